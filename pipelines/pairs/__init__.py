"""Training pairs: (vocals, instrumental) tracks -> fixed windows with singing, loudness-normalised, + manifest.

* `sources` - separated output and stem corpora ("oracle" pairs) as one `StemTrack` description;
* `windows` - fixed-length window positions;
* `activity` - vocal activity from energy and periodicity;
* `loudness` - BS.1770 loudness normalisation (pyloudnorm);
* `manifest` - the pair manifest schema read by the token-cache stage (`read_pairs`);
* `build` - the resumable, shardable `pipeline pairs` stage;
* `cli` - registers `pipeline pairs`.
"""
