"""The sharded dataset builder behind `kdaug augment`: the build's inputs and shard plan (spec),
manifest.json (manifest), one shard run and written atomically (shard), where shards run
(executors), the build itself (build) and its summable counts (stats)."""
