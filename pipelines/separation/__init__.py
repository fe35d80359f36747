"""Source separation for the corpus pipeline: mixtures -> aligned (vocals, instrumental) pairs with demucs.

SingSong (Donahue et al., 2023) gets its training pairs by separating a large music corpus with an
off-the-shelf separator. Modules, one concern each:

* `repo` - demucs model repositories: load by name, build small HDemucs/HTDemucs, export checksummed `.th`;
* `engine` - batched inference: segments of many tracks share one forward, overlap-added back per track;
* `tracks` - listing inputs (folders, MUSDB-style folders, manifests), track keys, `--shard i/N`;
* `separate` - the resumable `pipeline separate` run (outputs, markers, manifest, summary);
* `queue` - Redis Streams work queue for many consumers (`--queue`);
* `data` - stem crops with remixing, for training a small separator (`pipelines/training/separator.py`,
  `train separator`);
* `metrics` - SDR / SI-SDR, used by `eval separator` (`pipelines/evaluation/separator.py`);
* `cli` - registers `pipeline separate`.
"""
