"""The domain and its effects, split by what each part touches; no Faust here."""
