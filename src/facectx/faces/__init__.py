"""Face detection, landmarks, alignment into the canonical frame."""
