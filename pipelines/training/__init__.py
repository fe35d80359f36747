"""Trainers: one module per model, each with its `singsong train X` command (`codec`, `semantic`, `cascade`,
`separator`), standing on shared pieces: the training-run skeleton (`run.py`: deadline, stop signals, resume,
history, TensorBoard, best checkpoint), data-parallel ranks (`distributed.py`), the learning-rate schedule
(`schedule.py`) and the batch sources (`audio_crops.py`, `cascade_data.py`)."""
