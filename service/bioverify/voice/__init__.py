"""Voice pipeline: decode, resample, VAD, features, speaker embedding."""
