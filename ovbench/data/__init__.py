"""The data sets ovbench reads. `kinds` is the one table of data-set kinds (each row: its reader,
checker and synthetic writer); one reader module per layout (`vspw`, `vipseg`, `coco`, `images`
for the prepared image benchmarks) offers the `reader.VideoDataset` interface; `synthetic/`
writes small sets in each layout, `verify/` checks a root, `prepare/` turns raw image releases
into the evaluation layout, `roots` decides which root a command reads."""
