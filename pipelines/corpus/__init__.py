"""Synthetic multitrack corpus: procedural songs rendered part by part, with ground-truth stems.

Think of it as a small, unlimited "Slakh": a composer (`composer.py`) writes a song in a style preset
(`styles.py`) using basic harmony (`theory.py`); each part is rendered separately with a General MIDI
soundfont (`render.py`), the vocal with a source-filter singing synthesiser (`voice.py`); `generate.py` writes
stems, MIDI and metadata for many songs, resumably.
"""
