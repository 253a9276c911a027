"""Test support: fakes, fault injectors and rigs the tests share. The product never imports
from here (the sim's test knobs, the throwaway database, settings amendments live here)."""
