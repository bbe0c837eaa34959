"""AI backends (text, image, voice, video): one module per backend, a registry per medium."""
