"""The names a dataset upload's column/role mapping may use (LLaMA-Factory's ``columns`` and ``tags`` keys).

Part of the shared contract between the UI and the API (like the run-config schema beside it): the Datasets page
splits a user's mapping into ``columns`` and ``tags`` with these, and backend.datasets.columns validates them.
"""

# LLaMA-Factory's ``columns`` keys we read (``text`` is ours: the raw-text column) and its ``tags`` keys.
COLUMN_KEYS = ("prompt", "query", "response", "history", "system", "messages", "chosen", "rejected", "kto_tag",
               "tools", "text")
TAG_KEYS = ("role_tag", "content_tag", "user_tag", "assistant_tag", "system_tag", "function_tag",
            "observation_tag")
