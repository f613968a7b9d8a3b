"""English: strings of the Datasets area added after the catalog split. Part of :data:`app.i18n.en.MESSAGES`."""

from __future__ import annotations

MESSAGES: dict[str, str] = {
    # the column-mapping form (Advanced): the file's columns, one picker per field
    "datasets.columns_found": "Columns in this file: {columns}. Pick the column that holds each field below; leave a field empty to detect it.",
    "datasets.columns_none": "Choose a file to list its columns here (you can also type a column name into a field).",
    "datasets.colname.prompt": "prompt",
    "datasets.colname.query": "query",
    "datasets.colname.response": "response",
    "datasets.colname.history": "history",
    "datasets.colname.system": "system",
    "datasets.colname.messages": "messages",
    "datasets.colname.chosen": "chosen",
    "datasets.colname.rejected": "rejected",
    "datasets.colname.kto_tag": "kto_tag",
    "datasets.colname.tools": "tools",
    "datasets.colname.text": "text",
    "datasets.colkey.prompt": "the instruction (alpaca)",
    "datasets.colkey.query": "extra input, appended to the instruction",
    "datasets.colkey.response": "the answer to train on",
    "datasets.colkey.history": "earlier [instruction, answer] pairs",
    "datasets.colkey.system": "the system prompt",
    "datasets.colkey.messages": "the conversation list (sharegpt / messages)",
    "datasets.colkey.chosen": "the preferred answer (DPO)",
    "datasets.colkey.rejected": "the worse answer (DPO)",
    "datasets.colkey.kto_tag": "the true/false label (KTO)",
    "datasets.colkey.tools": "the tool definitions",
    "datasets.colkey.text": "raw text (pre-training)",
    "upload.mapping_conflict": "the mapping form and the JSON box give different columns for '{field}'. Keep one of them.",
    # LLaMA-Factory import and upload: skip invalid rows, reuse identical files
    "datasets.skip_invalid": "Skip invalid rows (import the valid records, list the skipped ones)",
    "import.reused_head": "♻ **{count} entries hold rows that are registered already**: nothing was copied, the existing dataset is used:",
    "import.reused_head.one": "♻ **1 entry holds rows that are registered already**: nothing was copied, the existing dataset is used:",
    "import.reused_line": "{entry} → {name} ({count} rows)",
    "import.reused_line.one": "{entry} → {name} (1 row)",
    "import.skip_invalid_hint": "Tick **Skip invalid rows** to import its valid records; the skipped ones are listed with their line or record number.",
    # a refused file: each problem once, all that the API listed, and how many it did not
    "upload.more_problems": "… and {count} more problems (the API lists the first 20)",
    "upload.more_problems.one": "… and 1 more problem (the API lists the first 20)",
    # preview as the model sees it: outliers left out of the chart, rows training drops or truncates
    "render.longer_than": "{count} samples longer than {tokens} tokens are left out of the chart (the longest has {max}).",
    "render.longer_than.one": "1 sample longer than {tokens} tokens is left out of the chart (it has {max}).",
    "render.dropped_cutoff": "row {row} ({tokens} tokens: its prompt fills the cutoff, the reply starts after it)",
    "render.dropped_no_reply": "row {row} ({tokens} tokens: nothing in it is trained, e.g. an empty reply)",
    "render.cutoff_beyond": "cutoff {cutoff} lies beyond the end of the chart",
    "render.dropped_rows": "Dropped:",
    "render.longest_truncated": "Longest samples over the cutoff:",
    "render.row_tokens": "row {row} ({tokens} tokens)",
    "render.rows_sep": "; ",
    "render.rows_more": " and {count} more",
}
