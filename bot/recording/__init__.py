"""The flight recorder as an application service: watch → detect → ledger → capture →
persist → notify (`bot.recording.service`). Above the I/O layer: it reads the cluster
through `bot.cluster` and keeps what it sees through `bot.store`."""
