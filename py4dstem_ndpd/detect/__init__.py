"""The neural disk detector: preprocessing, model loading, batched inference, DFL decoding (torch)."""
