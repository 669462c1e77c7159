"""File input and output shared by every stage: atomic writes, image reading, content hashes."""
