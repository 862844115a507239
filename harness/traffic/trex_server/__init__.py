"""A TRex-compatible control server for the built-in generator (serpens-gen).

TRex's stateless JSON-RPC 2.0 over ZMQ (REQ/REP, default port 4501) and its async publisher (PUB, 4500),
the subset trex-stl-lib's ``STLClient`` uses, answered by serpens-gen trials over the platform's memif
vdevs: the real client library (and so :class:`harness.traffic.trex.TRexGenerator`) drives real packets on
one machine. Protocol conformance, not a TRex validation (docs/trex.md, "The built-in TRex-compatible
server").

* ``wire``    the two ZMQ channels (and trex-stl-lib's compressed-request framing)
* ``rpc``     JSON-RPC 2.0 dispatch and errors
* ``ports``   ownership, streams, port states
* ``trial``   serpens-gen behind a port: stream checks, the multiplier, one trial
* ``stats``   serpens-gen's reports as TRex's counters, latency histogram and pg_id statistics
* ``server``  the RPC methods and the publisher
* ``builtin`` ``generator.trex.server: builtin``: the harness starts this server, TRexGenerator drives it
* ``python -m harness.traffic.trex_server`` runs it standalone.
"""
