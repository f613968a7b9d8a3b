"""简体中文: strings of the runs area. Part of :data:`app.i18n.zh.MESSAGES`; keys as in :mod:`app.i18n.en_runs`."""

from __future__ import annotations

MESSAGES: dict[str, str] = {}

MESSAGES.update({
    "lineage.title": "溯源：数据集、父训练、导出",
    "lineage.datasets": "数据集",
    "lineage.base_model": "基座模型",
    "lineage.parent": "继续自",
    "lineage.children": "被以下训练继续",
    "lineage.exports": "导出",
    "lineage.role_train": "训练",
    "lineage.role_validation": "验证",
    "lineage.rows": "{rows} 行",
    "lineage.weight": "权重 {weight}",
    "lineage.dataset_deleted": "已从数据集列表中删除",
    "lineage.run_deleted": "训练 <code>{id}</code>（已删除）",
    "lineage.fresh": "无：从基座模型开始",
    "lineage.none": "无",
    "lineage.no_exports": "暂无（见“导出”页）",
    "lineage.open_parent": "↰ 选择父训练",
    "runs.continue": "⏩ 继续训练",
    "runs.continue_note": "⏩ 继续训练 `{id}`：表单已填入它的设置，并已设置“从已有训练继续”，新训练将从它的适配器或训练好的模型开始。请选择更多训练轮数或新数据，然后点击开始。",
    "chart.grad_norm": "梯度范数",
    "chart.grad_norm_title": "梯度范数",
    "chart.lr": "学习率",
    "chart.lr_title": "学习率",
    "chart.gpu_mem": "显存",
    "chart.gpu_mem_title": "显存占用（峰值）",
    "chart.no_points": "尚未记录任何步：记录第一步后显示图表。",
    "chart.compare_no_points": "请选择已记录训练步的训练。",
})
