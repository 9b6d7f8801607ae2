"""VSPW data: the reader and label conversion (vspw), a synthetic VSPW-format generator
(synthetic) and an integrity check for a VSPW root (verify)."""
