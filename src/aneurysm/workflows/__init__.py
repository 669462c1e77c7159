"""What a user runs: pretraining, fine-tuning, the demo, reports, and the run folders they write.
Each is a library call the CLI and a notebook make alike."""
