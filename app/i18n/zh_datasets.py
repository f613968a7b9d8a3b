"""简体中文: strings of the Datasets area added after the catalog split. Part of :data:`app.i18n.zh.MESSAGES`."""

from __future__ import annotations

MESSAGES: dict[str, str] = {
    # 列映射表单（高级）：文件中的列，每个字段一个选择框
    "datasets.columns_found": "此文件的列：{columns}。请在下方为每个字段选择对应的列；留空则自动识别。",
    "datasets.columns_none": "选择文件后，这里会列出它的列（也可以直接在字段中输入列名）。",
    "datasets.colname.prompt": "指令",
    "datasets.colname.query": "附加输入",
    "datasets.colname.response": "回答",
    "datasets.colname.history": "历史对话",
    "datasets.colname.system": "系统提示词",
    "datasets.colname.messages": "对话",
    "datasets.colname.chosen": "更优回答",
    "datasets.colname.rejected": "较差回答",
    "datasets.colname.kto_tag": "KTO 标签",
    "datasets.colname.tools": "工具",
    "datasets.colname.text": "文本",
    "datasets.colkey.prompt": "指令（alpaca）",
    "datasets.colkey.query": "附加输入，接在指令之后",
    "datasets.colkey.response": "要训练的回答",
    "datasets.colkey.history": "此前的 [指令, 回答] 对",
    "datasets.colkey.system": "系统提示词",
    "datasets.colkey.messages": "对话列表（sharegpt / messages）",
    "datasets.colkey.chosen": "更优的回答（DPO）",
    "datasets.colkey.rejected": "较差的回答（DPO）",
    "datasets.colkey.kto_tag": "true/false 标签（KTO）",
    "datasets.colkey.tools": "工具定义",
    "datasets.colkey.text": "纯文本（预训练）",
    "upload.mapping_conflict": "列映射表单与 JSON 框为 '{field}' 给出了不同的列，请只保留其中一个。",
    # LLaMA-Factory 导入与上传：跳过无效行、复用相同文件
    "datasets.skip_invalid": "跳过无效行（导入有效记录，列出被跳过的记录）",
    "import.reused_head": "♻ **{count} 个条目的数据已注册过**：未重复复制，直接使用已有数据集：",
    "import.reused_line": "{entry} → {name}（{count} 行）",
    "import.skip_invalid_hint": "勾选 **跳过无效行** 即可导入其中的有效记录；被跳过的记录会连同行号或记录号一并列出。",
    # 被拒绝的文件：每个问题只列一次，列出 API 给出的全部问题及未列出的数量
    "upload.more_problems": "…… 另有 {count} 个问题（API 只列出前 20 个）",
    # 按模型视角预览：图中省略的超长样本、训练会丢弃或截断的行
    "render.longer_than": "{count} 个样本长于 {tokens} 个词元，未画入图中（最长的有 {max} 个词元）。",
    "render.dropped_cutoff": "第 {row} 行（{tokens} 个词元：提示已占满截断长度，回复在其之后）",
    "render.dropped_no_reply": "第 {row} 行（{tokens} 个词元：没有任何参与训练的内容，例如回复为空）",
    "render.cutoff_beyond": "截断长度 {cutoff} 超出图的右端",
    "render.dropped_rows": "被丢弃的：",
    "render.longest_truncated": "超过截断长度的最长样本：",
    "render.row_tokens": "第 {row} 行（{tokens} 个词元）",
    "render.rows_sep": "；",
    "render.rows_more": " 等另外 {count} 行",
}
