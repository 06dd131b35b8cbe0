// Every user-visible string of the central console, in Chinese and English.

const STRINGS = {
  brand: { zh: "Gatehouse 中心平台", en: "Gatehouse Central" },
  nav_fleet: { zh: "网关总览", en: "Fleet" },
  nav_alarms: { zh: "报警台", en: "Alarms" },
  nav_history: { zh: "报警历史与统计", en: "Alarm history" },
  nav_points: { zh: "点位查询", en: "Points" },
  nav_audit: { zh: "批次审计", en: "Batch audit" },
  nav_users: { zh: "账号", en: "Accounts" },
  nav_commands: { zh: "远程命令", en: "Commands" },
  logout: { zh: "退出", en: "Log out" },
  lang_other: { zh: "English", en: "中文" },
  loading: { zh: "加载中…", en: "Loading…" },
  // sign-in and first run
  login_title: { zh: "中心平台登录", en: "Central sign-in" },
  setup_title: { zh: "首次使用：创建管理员", en: "First run: create the administrator" },
  setup_hint: {
    zh: "设置码已打印在中心服务的控制台/日志中，并写入数据目录的 console-setup-code 文件。",
    en: "The setup code was printed on central's console/journal and written to console-setup-code in its data folder.",
  },
  setup_code: { zh: "设置码", en: "Setup code" },
  username: { zh: "账号", en: "Username" },
  password: { zh: "密码", en: "Password" },
  password_again: { zh: "确认密码", en: "Repeat password" },
  name: { zh: "姓名", en: "Name" },
  login: { zh: "登录", en: "Sign in" },
  create_admin: { zh: "创建管理员", en: "Create administrator" },
  err_mismatch: { zh: "两次输入的密码不一致", en: "The passwords differ" },
  err_bad_credentials: { zh: "账号或密码错误，还可尝试 {n} 次", en: "Wrong username or password, {n} attempts left" },
  err_bad_credentials_plain: { zh: "账号或密码错误", en: "Wrong username or password" },
  err_locked: { zh: "账号已锁定，请联系管理员解锁", en: "Account locked; ask an administrator to unlock it" },
  err_locked_until: { zh: "账号已锁定至 {t}，或请管理员解锁", en: "Account locked until {t}, or ask an administrator to unlock it" },
  err_throttled: { zh: "尝试过于频繁，请 {n} 秒后再试", en: "Too many attempts, try again in {n} s" },
  err_setup_code: { zh: "设置码不正确", en: "Wrong setup code" },
  err_forbidden: { zh: "无此权限", en: "Not permitted" },
  err_network: { zh: "无法连接中心服务", en: "Central cannot be reached" },
  err_session: { zh: "会话已过期，请重新登录", en: "Session expired, sign in again" },
  err_generic: { zh: "出错了：{e}", en: "Error: {e}" },
  err_not_available: { zh: "中心服务尚未提供此功能", en: "Central does not offer this yet" },
  // fleet
  estate: { zh: "园区", en: "Estate" },
  estates: { zh: "园区", en: "Estates" },
  all_estates: { zh: "全部园区", en: "All estates" },
  gateway: { zh: "网关", en: "Gateway" },
  gateways: { zh: "网关", en: "Gateways" },
  online: { zh: "在线", en: "Online" },
  offline: { zh: "离线", en: "Offline" },
  unknown: { zh: "未知", en: "Unknown" },
  any_state: { zh: "全部状态", en: "Any state" },
  last_seen: { zh: "最后通信", en: "Last seen" },
  last_batch: { zh: "最后批次", en: "Last batch" },
  backlog: { zh: "待发积压", en: "Backlog" },
  oldest_unacked: { zh: "最早未确认", en: "Oldest unacked" },
  firmware: { zh: "固件版本", en: "Firmware" },
  config_version: { zh: "配置版本", en: "Config" },
  active_alarms: { zh: "活动报警", en: "Active alarms" },
  filter: { zh: "筛选（网关、名称、园区）", en: "Filter (gateway, name, estate)" },
  shown_of: { zh: "显示 {a}–{b}，共 {n} 台", en: "{a}–{b} of {n}" },
  prev: { zh: "上一页", en: "Previous" },
  next: { zh: "下一页", en: "Next" },
  // alarms
  time: { zh: "时间", en: "Time" },
  point: { zh: "点位", en: "Point" },
  class: { zh: "类别", en: "Class" },
  priority: { zh: "优先级", en: "Priority" },
  state: { zh: "状态", en: "State" },
  message: { zh: "内容", en: "Message" },
  any_class: { zh: "全部类别", en: "Any class" },
  any_priority: { zh: "全部优先级", en: "Any priority" },
  live_on: { zh: "实时", en: "Live" },
  live_off: { zh: "实时连接中断，正在重连…", en: "Live stream lost, reconnecting…" },
  alarms_shown: { zh: "显示 {a} 条，共 {n} 条活动报警", en: "{a} shown of {n} active alarms" },
  alarms_newest: { zh: "显示最新的 {a} 条活动报警（总数见上方）", en: "The newest {a} active alarms (totals above)" },
  no_alarms: { zh: "无活动报警", en: "No active alarms" },
  cls_fire: { zh: "火警", en: "Fire" },
  cls_supervisory: { zh: "监管", en: "Supervisory" },
  cls_fault: { zh: "故障", en: "Fault" },
  cls_security: { zh: "安防", en: "Security" },
  cls_other: { zh: "其他", en: "Other" },
  st_active_unacked: { zh: "报警未确认", en: "Active, unacked" },
  st_active_acked: { zh: "报警已确认", en: "Active, acked" },
  st_cleared_unacked: { zh: "已恢复未确认", en: "Cleared, unacked" },
  st_closed: { zh: "已关闭", en: "Closed" },
  st_shelved: { zh: "已屏蔽", en: "Shelved" },
  raised: { zh: "发生", en: "Raised" },
  acked_by: { zh: "确认人", en: "Acked by" },
  cleared: { zh: "恢复", en: "Cleared" },
  // history and statistics
  range: { zh: "时间范围", en: "Range" },
  last_hour: { zh: "最近 1 小时", en: "Last hour" },
  last_day: { zh: "最近 24 小时", en: "Last 24 hours" },
  last_week: { zh: "最近 7 天", en: "Last 7 days" },
  last_month: { zh: "最近 30 天", en: "Last 30 days" },
  by_class: { zh: "按类别", en: "By class" },
  by_estate: { zh: "按园区", en: "By estate" },
  by_priority: { zh: "按优先级", en: "By priority" },
  over_time: { zh: "随时间", en: "Over time" },
  history: { zh: "报警记录", en: "Alarm records" },
  no_data: { zh: "无数据", en: "No data" },
  // points
  search_points: { zh: "搜索点位（点位号片段）", en: "Search points (part of the id)" },
  search: { zh: "搜索", en: "Search" },
  value: { zh: "最新值", en: "Latest value" },
  quality: { zh: "质量", en: "Quality" },
  q_0: { zh: "正常", en: "Good" },
  q_1: { zh: "可疑", en: "Uncertain" },
  q_2: { zh: "无效", en: "Bad" },
  export_csv: { zh: "导出 CSV", en: "Export CSV" },
  history_of: { zh: "{p} 的历史曲线", en: "History of {p}" },
  pick_point: { zh: "点击左侧的点位查看历史曲线", en: "Pick a point to see its history" },
  points_found: { zh: "找到 {n} 个点位", en: "{n} points found" },
  // batch audit
  rejected: { zh: "被拒批次", en: "Rejected batches" },
  gaps: { zh: "数据缺口记录", en: "Gap records" },
  reason: { zh: "原因", en: "Reason" },
  lane: { zh: "通道", en: "Lane" },
  seq: { zh: "序号", en: "Seq" },
  detail: { zh: "详情", en: "Detail" },
  transport: { zh: "传输", en: "Transport" },
  size: { zh: "大小", en: "Size" },
  all_gateways: { zh: "全部网关", en: "All gateways" },
  r_bad_signature: { zh: "签名错误", en: "Bad signature" },
  r_replay: { zh: "重放", en: "Replay" },
  r_unknown_gateway: { zh: "未知网关", en: "Unknown gateway" },
  r_unknown_key: { zh: "未知密钥", en: "Unknown key" },
  // accounts
  users: { zh: "账号", en: "Accounts" },
  role: { zh: "角色", en: "Role" },
  role_admin: { zh: "管理员", en: "Administrator" },
  role_operator: { zh: "操作员", en: "Operator" },
  role_viewer: { zh: "只读", en: "Viewer" },
  estates_hint: { zh: "园区（逗号分隔，留空=全部）", en: "Estates (comma-separated, empty = all)" },
  add_user: { zh: "新增账号", en: "Add account" },
  save: { zh: "保存", en: "Save" },
  disable: { zh: "停用", en: "Disable" },
  enable: { zh: "启用", en: "Enable" },
  unlock: { zh: "解锁", en: "Unlock" },
  reset_password: { zh: "重置密码", en: "Reset password" },
  new_password: { zh: "新密码", en: "New password" },
  locked_from: { zh: "锁定来源", en: "Locked from" },
  disabled: { zh: "已停用", en: "Disabled" },
  console_audit: { zh: "操作日志", en: "Audit log" },
  action: { zh: "操作", en: "Action" },
  user: { zh: "用户", en: "User" },
  ip: { zh: "地址", en: "Address" },
  target: { zh: "对象", en: "Target" },
  result: { zh: "结果", en: "Result" },
  saved: { zh: "已保存", en: "Saved" },
  // commands to gateways (views/commands.js, the alarm console's buttons)
  send_command: { zh: "发送命令", en: "Send a command" },
  send: { zh: "发送", en: "Send" },
  cseq: { zh: "命令序号", en: "No." },
  args: { zh: "参数", en: "Arguments" },
  by: { zh: "操作人 / 来源", en: "By / from" },
  no_commands: { zh: "暂无命令", en: "No commands" },
  pick_gateway: { zh: "请先选择网关", en: "Pick a gateway first" },
  command_sent: { zh: "已发送（序号 {cseq}，{state}）", en: "Sent (no. {cseq}, {state})" },
  cmd_pending: { zh: "等待执行", en: "Pending" },
  cmd_done: { zh: "已执行", en: "Done" },
  cmd_refused: { zh: "被拒绝", en: "Refused" },
  cmd_failed: { zh: "执行失败", en: "Failed" },
  cmd_expired: { zh: "已过期", en: "Expired" },
  cmd_unsent: { zh: "未发出", en: "Not sent" },
  "act_point.write": { zh: "写点位", en: "Write a point" },
  "act_alarm.ack": { zh: "确认报警", en: "Acknowledge an alarm" },
  "act_alarm.shelve": { zh: "屏蔽报警", en: "Shelve an alarm" },
  "act_log.level": { zh: "临时日志级别", en: "Temporary log level" },
  "act_outbox.resend": { zh: "重发批次", en: "Resend batches" },
  "act_config.push": { zh: "下发配置文件", en: "Push the site file" },
  arg_point: { zh: "点位号", en: "Point id" },
  arg_value: { zh: "值", en: "Value" },
  arg_key: { zh: "报警键", en: "Alarm key" },
  arg_comment: { zh: "备注", en: "Comment" },
  arg_minutes: { zh: "分钟", en: "Minutes" },
  arg_reason: { zh: "原因", en: "Reason" },
  arg_level: { zh: "级别", en: "Level" },
  arg_lane: { zh: "通道", en: "Lane" },
  arg_first: { zh: "起始序号", en: "First" },
  arg_last: { zh: "结束序号", en: "Last" },
  arg_version: { zh: "配置版本", en: "Version" },
  arg_health_s: { zh: "健康检查（秒）", en: "Health check (s)" },
  arg_text: { zh: "配置文件（YAML）", en: "Site file (YAML)" },
  arg_ttl_s: { zh: "有效期（秒）", en: "Valid for (s)" },
  ack: { zh: "确认", en: "Acknowledge" },
  shelve: { zh: "屏蔽", en: "Shelve" },
  shelve_reason: { zh: "屏蔽原因（屏蔽 60 分钟）", en: "Reason for shelving (60 minutes)" },
  shelve_default_reason: { zh: "中心平台屏蔽", en: "shelved from central" },
  alarm_command_sent: {
    zh: "已向 {gw} 发送命令（序号 {cseq}），执行结果见“远程命令”",
    en: "Command sent to {gw} (no. {cseq}); its result shows under Commands",
  },
};

const KEY = "ghc_lang";
let current = localStorage.getItem(KEY) || ((navigator.language || "zh").toLowerCase().startsWith("zh") ? "zh" : "en");
const listeners = [];

export function lang() {
  return current;
}

export function setLang(value) {
  current = value === "en" ? "en" : "zh";
  localStorage.setItem(KEY, current);
  document.documentElement.lang = current === "zh" ? "zh-CN" : "en";
  for (const fn of listeners) fn(current);
}

export function onLangChange(fn) {
  listeners.push(fn);
}

/** The string `key` in the current language, with {name} placeholders filled from `vars`. */
export function t(key, vars) {
  const entry = STRINGS[key];
  let text = entry ? entry[current] || entry.en : key;
  if (vars) for (const [k, v] of Object.entries(vars)) text = text.replaceAll(`{${k}}`, String(v));
  return text;
}

/** A label for a code that may have a string ("cls_fire"), else the code itself. */
export function label(prefix, code) {
  const key = `${prefix}_${code}`;
  return STRINGS[key] ? t(key) : String(code ?? "");
}
