"""Training core shared by `msm midtrain` and `msm aft`.

config.py      hyperparameters (typed dataclasses, paper defaults, help texts)
data.py        documents/chats -> token items -> best-fit packed rows, loss masks
attention.py   keeping attention inside each packed document, and a probe that proves it
loop.py        the training loop (single device, DDP, FSDP), metrics, MFU
checkpoint.py  resumable state (atomic) and the final adapter/full-model folder
stage.py       input checks and the two stages, as the CLI calls them

Nothing here is imported at CLI start-up except config.py (stdlib only).
"""
