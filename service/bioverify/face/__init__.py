"""Face pipeline: decode, detect, quality, align, embed."""
