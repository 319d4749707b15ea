"""``stream-app bench``: the performance figures, side by side, on one seeded workload.

Every figure that compares is a ratio measured in the same run on the same events, and
CPU time per event is read from each process's own counters (``/proc/PID/stat``), so a
busy shared machine changes events/s far more than it changes the ratios:

1. **plain aiokafka** consumer + ``orjson.loads`` (in this process);
2. **bare Faust agent** that only decodes the events (``bench_bare.py``, a child), stock
   and with this project's Faust patches (``worker/patches``) and event loop (what one pass through
   Faust costs the worker);
3. **the worker** end to end (intake → keyed topic → join → Redis), a child
   ``stream-app worker`` on fresh topics and a fresh consumer group;
4. **end to end latency**: probe callbacks produced under a steady background load,
   each timed until the reader's ``total_callbacks_received`` shows it;
5. **the reader**: a 366-day range, concurrent clients for a few seconds;
6. **restart**: the worker stopped and started again on its data directory, timed until
   a new callback is counted (table recovery and the group join included);
7. **scale-out**: the workload on twice the partitions, consumed by one worker and then
   by two (each must be given half the partitions); CPU per event summed over the
   workers, the growth from one to two reported;
8. **state** (``--state-contacts N``): a worker filled with one outbound call for each
   of N contacts; its RSS, its data directory, and its restart as in 6.

Nothing here asserts a figure; ``tests/integration/test_bench.py`` runs it at a tiny size
so it cannot rot. Needs Kafka and Redis (``stream-app services up``); starts everything else itself.
"""
