"""简体中文: strings of the Train page and its config row (Load/Download config, suggested settings). Part of
:data:`app.i18n.zh.MESSAGES`."""

from __future__ import annotations

MESSAGES: dict[str, str] = {
    "train.intro": (
        "选择基础模型和一个或多个数据集，选好训练阶段和微调方法即可开始。**预览配置和命令** 会检查并显示将要运行的内容。"
        "训练开始后关闭浏览器也不会中断：在 **运行** 页查看进度。**从…开始** 可用推荐参数、内置预设或以前的某次运行填写表单；"
        "**下载配置** 将其保存为 `tunesmith train` 可用的 YAML，**加载配置** 可读回（也接受 LLaMA-Factory 的训练 YAML）。"
    ),
    "train.base_model": "基础模型",
    "train.base_model_help": "本工作室中的模型（内置模型，或模型目录下的文件夹），或 Hugging Face 格式模型文件夹的完整路径。",
    "train.datasets": "数据集",
    "train.datasets_help": "一个或多个已注册的数据集。多个数据集会依次拼接，或在“数据集混合与验证集”中按权重混合。"
                           "可在“数据集”页上传更多。",
    "train.method": "微调方法",
    "train.lora_variants": "LoRA 变体",
    "train.section_training": "#### 训练参数",
    "train.advanced": "高级设置",
    "train.preference_help": (
        "**偏好训练**（dpo 阶段：偏好数据集；kto 阶段：KTO 或偏好数据集）。参考模型即基础模型：LoRA/QLoRA 时为关闭适配器的基础模型，"
        "全参数/冻结微调时为一份冻结的副本。批次使用填充（序列打包关闭）。"
    ),
    "train.distributed": "分布式：GPU、DeepSpeed ZeRO、FSDP、多机",
    "train.distributed_help": (
        "**分布式**（GPU 机器）：默认每块 GPU 一个进程（多块时为 DDP）。DeepSpeed ZeRO 需要安装 deepspeed；FSDP2 对参数分片。"
        "多机训练：在每台机器上用各自的序号运行同一份配置。"
    ),
    "train.run_name": "运行名称（可选）",
    "train.run_name_placeholder": "例如 smol-lora-r8",
    "train.preview": "预览配置和命令",
    "train.start": "▶ 开始训练",
    "train.open_run": "在“运行”页打开此运行 →",
    "train.config_json": "配置 JSON（“开始训练”提交的内容）",
    "train.schema_rejects": "⚠ **表单中有运行配置不接受的值：**",
    "train.api_refuses": "API 会拒绝此运行。",
    "train.api_refused": "API 拒绝了此运行。",
    "train.preview_ok": "✓ 运行配置有效。点击 **开始训练** 提交。将执行：",
    "train.preview_file": "`{name}`（写入运行目录）：",
    "train.started": "✓ 已开始运行 **{name}** — 编号 `{id}`，状态 `{state}`。可在 **运行** 页实时查看。",
    "train.mixture_group": "数据集混合与验证集",
    "train.mixture_intro": (
        "**权重** 决定每个数据集在训练样本中的占比（例如 0.7 和 0.3，或 2 和 1）。权重全部留空时，每个数据集的每一行各用一次。"
        "设置权重后，混合集在不重复任何一行的前提下尽可能大，除非设置了 **混合集大小**。**最大样本数** 只取该数据集前 N 个可用行。"
        "评估损失可以留出一部分（高级设置中的 *验证集比例*），**或** 在此选择验证数据集。"
    ),
    "train.mixture": "混合（每个所选数据集一行）",
    "train.mixture_id": "编号",
    "train.mixture_dataset": "数据集",
    "train.mixture_weight": "权重",
    "train.mixture_max": "最大样本数",
    "train.val_datasets": "验证数据集",
    "train.val_datasets_help": "用这些数据集的行计算评估损失，代替按比例留出（此时验证集比例须为 0）。",
    "config.start_from": "从…开始",
    "config.start_from_help": "模型的推荐参数、内置预设或以前的某次运行（完全相同的设置）：填写下面所有字段。",
    "config.load": "加载配置（YAML）",
    "config.download": "下载配置（YAML）",
    "config.file": "配置文件（用 `tunesmith train 文件` 运行）",
    "config.suggested": "✨ 所选基础模型的推荐参数（依据模型大小和本机内存）",
    "config.preset": "预设 · {name}",
    "config.preset_described": "预设 · {name} — {description}",
    "config.run": "运行 · {label}",
    "config.no_preset": "⚠ 预设 {name!r} 已不存在，请另选一个。",
    "config.unreadable": "无法读取该配置。",
    "config.from_preset": "预设 **{name}**",
    "config.from_run": "运行 **{name}**（`{id}`）",
    "config.from_file": "**{name}**",
    "config.lists_unreadable": "无法读取本工作室的模型和数据集，因此没有应用任何内容。",
    "config.filled": "✓ 已用{origin}填写表单。",
    "config.filled_except": "⚠ 已用{origin}填写表单，但有 {count} 个值无法应用：",
    "config.api_refuses": "按目前的设置，API 会拒绝此运行：",
    "config.api_accepts": "✓ API 接受此配置：**预览** 显示命令，**开始训练** 即可运行。",
    "config.invalid_stored": "✗ 该配置对当前版本的工作室无效，因此没有应用任何内容：",
    "config.file_rejected": "✗ **未应用该配置文件**（表单未改动）：",
    "config.download_rejected": "⚠ **表单中有运行配置不接受的值**，因此没有生成文件：",
    "config.downloaded": "✓ `{filename}` 与 **开始训练** 提交的内容完全一致。可用 `tunesmith train {filename}` 运行，"
                         "或以后在此加载。",
    "config.pick_model_first": "⚠ 请先选择基础模型；推荐参数取决于模型大小。",
    "config.no_suggestion": "该模型没有推荐参数。",
    "config.from_suggestion": "**{model}** 的推荐参数（{notes}）",
    "config.model_hint": "ℹ {note} 本机推荐：{summary}。在 *从…开始* 中选择 **✨ 推荐参数** 即可应用。",
    "config.note_size": "{params} 参数（{layers} 层，隐藏层维度 {hidden}）。",
    "config.note_cpu": "本机没有 GPU：在 CPU（{cores} 核）上用 LoRA 训练，CPU 支持时使用 bf16。",
    "config.device_cpu": "CPU（{cores} 核）",
    "config.device_gpus": "{count} × {gpu}（可用 {free}）",
    "config.suggestion_summary": "{method} 秩 {rank}，学习率 {lr}，批处理 {batch} × {accum}，截断长度 {cutoff}，设备 {device}",
    "config.dataset_missing": "数据集 {ref!r} 未在本工作室注册（已删除，或来自其他工作室）：已从{where}中去掉。"
                              "请在“数据集”页上传后重新选择。",
    "config.model_missing": "基础模型 {model!r} 不在本工作室的模型列表中：基础模型保持当前选择。"
                            "请把模型放到模型目录下（见 README），或另选一个。",
    "config.dropped": "{where}：{msg} — 未应用，该字段保持默认值",
    "config.lf_warnings": "未应用的 LLaMA-Factory 设置：",
    "config.too_big": "{name} 有 {size} 字节；运行配置只有几百字节。请选择“下载配置（YAML）”生成的文件、预设或 LLaMA-Factory 的训练 YAML。",
    "config.not_text": "{name} 不是文本文件；请选择 .yaml 运行配置。",
    "config.unreadable_file": "无法读取 {name}：{error}",
    "config.from_lf_file": "**{name}**（LLaMA-Factory 训练 YAML，其参数已映射为本工作室的设置）",
    # 按阶段筛选数据集、本机不支持的选项（GET /capabilities）、grpo 阶段与奖励编辑器
    "train.capabilities": "本机支持的选项",
    "train.datasets_for_stage": "{stage} 阶段可用的数据集：{kinds}。可在“数据集”页上传更多。",
    "train.stage_dropped": "ℹ {stage} 阶段不能使用 {names}，已从数据集中移除。",
    "train.refused_choice": "{label}（本机不可用）",
    "train.reason_needs_gpu": "需要 CUDA GPU，本机没有；请改用 {instead}",
    "train.reason_needs_package": "需要 {package} 包，本机未安装：{fix}",
    "train.reason_either": "{items} 或 {last}",
    "train.refused_reason": "⊘ {value}：{reason}",
    "train.grpo_help": (
        "**GRPO**（基于奖励函数的强化学习）：对数据集中的每个提示（最后一个用户轮次），模型生成多条回复，由下方的奖励函数打分，"
        "训练使模型偏向得分高于本组平均的回复。对话数据集的参考回复用于“完全匹配”和“包含”两种奖励的比较。"
    ),
    "train.rewards": "奖励函数（本次训练的奖励为其加权和）",
    "train.rewards_help": (
        "至少添加一个奖励。内置奖励给每条回复打 0 或 1 分；奖励模型用你在这里训练的奖励模型（rm 阶段）打分；Python 奖励是"
        "工作室 `rewards` 文件夹中的函数。可在表格中修改权重；负权重即惩罚。"
    ),
    "train.reward_col_reward": "奖励",
    "train.reward_col_setting": "设置",
    "train.reward_col_weight": "权重",
    "train.reward_kind": "要添加的奖励",
    "ph.reward_pattern": "例如 ^[0-9]+$",
    "train.reward_pattern": "模式（正则表达式）",
    "train.reward_target": "目标长度（字符）",
    "train.reward_run": "奖励模型（已完成的 rm 运行）",
    "train.reward_function": "Python 奖励函数",
    "train.reward_weight": "权重",
    "train.reward_add": "+ 添加奖励",
    "train.reward_remove": "删除最后一个",
    "train.reward_no_rm_runs": "⚠ 还没有已完成的奖励模型运行：请先用 rm 阶段在偏好数据集上训练一个。",
    "train.reward_no_python": "⚠ 还没有 Python 奖励函数：由管理员把包含奖励函数的 `.py` 文件放入工作室的奖励文件夹 `{folder}`。",
    "train.reward_needs_setting": "⚠ 请先填写“{reward}”奖励的设置。",
    "reward.exact_match": "完全匹配（参考回复）",
    "reward.contains": "包含参考回复",
    "reward.regex": "匹配模式（正则）",
    "reward.length": "长度接近目标",
    "reward.json_valid": "有效 JSON",
    "reward.reward_model": "奖励模型（rm 运行）",
    "reward.python": "Python 函数",
    "field.grpo_num_generations": "每个提示的回复数",
    "field.grpo_max_completion_length": "最大回复长度（词元）",
    "field.grpo_temperature": "采样温度",
    "field.grpo_beta": "散度系数 β",
    "field.grpo_loss_type": "损失变体",
    "help.grpo_num_generations": "每个提示采样的回复数，其平均奖励作为基线。批处理大小 × 梯度累积必须是它的倍数。",
    "help.grpo_max_completion_length": "采样回复的最大长度，须在截断长度内为提示留出空间。",
    "help.grpo_temperature": "越高，用于比较的回复越多样。",
    "help.grpo_beta": "使模型保持接近初始模型的力度（0 = 不约束，也不加载参考模型；`DeepSeek-R1` 使用 0.001）。",
    "help.grpo_loss_type": "词元损失的平均方式：`grpo` = 按回复平均（偏好短回复），`dr_grpo` = 除以常数（无长度偏差），"
                           "`dapo` = 对整个批次的词元平均（默认），`bnpo` = 对每个微批次的词元平均。",
}
