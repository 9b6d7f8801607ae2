"""`ovbench run`: stream every frame of a split's videos through a model into the metrics.

The runner owns everything an adapter should not have to get right: decoding in worker
processes, batching within a video, device placement, mixed precision, resizing of scores to
the ground-truth size, argmax, metrics, timing, resumable state, and isolation of broken videos.
Its parts: `options` (what a run is asked), `orchestration` (one run from start to record),
`schedule` (which videos, in which order, on which process), `loop` (one process's pass),
`model_io` (the model's side, shared with `predict` and `check-model`), `distributed`
(devices, torchrun), `fingerprint` (what makes two runs the same), `state` (the resumable state
folder), `record` (the record made from a state), `clock` (model time), `textcache`.
"""
