"""Run records, the one JSON per run that every table is made from: `schema` (what a record
holds, checked), `write` (assembling and writing one), `read` (reading folders of them as
data), `summary` (the terminal lines) and `provenance` (code, machine and moment)."""
