"""schemathesis hooks of test_fuzz.py: each steers generated requests around one known bug that is not the API's
under test, and says whose it is. Remove a hook once its bug is fixed (loaded through SCHEMATHESIS_HOOKS)."""

from __future__ import annotations

# No known bugs of others to steer around today (the last one — cloud access tokens an HTTP header cannot carry —
# is refused by the model now: test_fuzz.test_a_cloud_token_no_header_can_carry_is_refused).
