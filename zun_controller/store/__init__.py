"""The record store: etcd (the real one) and an in-memory one, behind one `Store` protocol.

Keys, JSON codec, compare-and-swap updates, status subresource writes, finalizer-aware delete,
watches that resume and report compaction, and leases for leader election.
The only package that imports the etcd client. May import models.
"""
