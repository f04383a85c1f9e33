"""When the featurestore tests' rows are stamped (one instant for every test module)."""
from datetime import datetime, timezone

AS_OF = datetime(2025, 1, 1, tzinfo=timezone.utc)
