"""Cluster access: the only package (with bot.sim) that imports `kubernetes`.

Hot paths read raw JSON pages (`_preload_content=False`) and decode only the fields the
patrol needs with msgspec; the generated V1Pod models are never built for lists.
"""
