"""Chart annotations: notes and markers derived from the database, and their routes."""
