"""Reading many job hashes fast: one script call packs each job into one string.

RQ and BullMQ keep a job in a hash of a dozen or more fields; a pipelined
``HGETALL`` per job makes redis-py parse every field as its own reply, which
costs more than everything else a redrive does per job.  :data:`PACKED` runs
the ``HGETALL`` (and, for RQ, the ``XREVRANGE ... COUNT 1`` of its results
stream) on the server and returns each job as ``len:bytes`` pieces in one
string, split here with plain slicing.  Read-only, a bounded number of jobs
per call.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import accumulate

from qctl.adapters.redis import scripts
from qctl.adapters.redis.connection import Client
from qctl.adapters.redis.layouts.steps import Pace

PER_CALL = 100  # jobs per call to start with; then paced (layouts/steps.py) to a few milliseconds

# KEYS: hash keys, then (when ARGV[1] == '1') one stream key per hash.  Returns how long it ran (microseconds,
# for the pace), then per hash one string: the sizes of
# its pieces joined by ',' (the first says how many of them are the hash's fields and values, the rest are the
# newest stream entry's), a ';', then the pieces themselves.  Two table.concat per job: the cheapest shape for
# both sides (a nested reply costs Redis twice as much to build, and redis-py ten times as much to parse).
PACKED = """
local n = #KEYS
if ARGV[1] == '1' then n = n / 2 end
local started = redis.call('TIME')
local out = {0}
for i = 1, n do
  local flat = redis.call('HGETALL', KEYS[i])
  local sizes, data = {#flat}, {}
  for j = 1, #flat do
    sizes[j + 1] = #flat[j]
    data[j] = flat[j]
  end
  if ARGV[1] == '1' then
    local entry = redis.call('XREVRANGE', KEYS[n + i], '+', '-', 'COUNT', 1)[1]
    if entry then
      for j = 1, #entry[2] do
        sizes[#sizes + 1] = #entry[2][j]
        data[#data + 1] = entry[2][j]
      end
    end
  end
  out[i + 1] = table.concat(sizes, ',') .. ';' .. table.concat(data)
end
local ended = redis.call('TIME')
out[1] = (ended[1] - started[1]) * 1000000 + ended[2] - started[2]
return out
"""

Fields = dict[bytes, bytes]


def hashes(client: Client, keys: Sequence[bytes], streams: Sequence[bytes] | None = None,
           pace: Pace | None = None) -> list[tuple[Fields, Fields | None]]:
    """Each hash's fields (empty when it is gone) and, with ``streams``, its stream's newest entry (or None)."""
    pace = pace or Pace(PER_CALL, most=1000)
    found: list[tuple[Fields, Fields | None]] = []
    at = 0
    while at < len(keys):
        batch = list(keys[at:at + pace.size])
        size = len(batch)
        if streams is not None:
            batch += list(streams[at:at + size])
        micros, *blobs = scripts.run(client, PACKED, batch, ["1" if streams is not None else "0"])
        pace.record(size, int(micros) / 1e6)
        found += [unpack(blob) for blob in blobs]
        at += size
    return found


def unpack(blob: bytes) -> tuple[Fields, Fields | None]:
    head, _, data = blob.partition(b";")  # the head is digits and commas: its first ';' ends it
    sizes = list(map(int, head.split(b",")))
    cut = sizes[0]
    ends = list(accumulate(sizes[1:]))  # slicing at the running sums, in C: this runs once per job read
    pieces = list(map(data.__getitem__, map(slice, [0, *ends[:-1]], ends)))
    entry = pieces[cut:]
    return _pairs(pieces[:cut]), _pairs(entry) if entry else None


def _pairs(pieces: list[bytes]) -> Fields:
    return dict(zip(pieces[::2], pieces[1::2], strict=True))
