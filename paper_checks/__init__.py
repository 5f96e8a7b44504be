"""Each paper's claims as executable checks (one module per paper)."""
