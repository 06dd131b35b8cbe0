// Every user-visible string of the dashboard, in Chinese and English, in one table.
// Chinese wording follows what duty staff in a fire control room say (GB 4717 / GB 25506 terms).

const STRINGS = {
  app_title: { zh: "消防安防值班台", en: "Fire & Security Duty Console" },
  loading: { zh: "加载中…", en: "Loading…" },
  // navigation
  nav_duty: { zh: "值班", en: "Duty" },
  nav_history: { zh: "历史", en: "History" },
  nav_stats: { zh: "统计", en: "Statistics" },
  nav_site: { zh: "设备", en: "Site" },
  nav_zones: { zh: "分区图", en: "Zones" },
  nav_health: { zh: "运行状态", en: "Health" },
  nav_tech: { zh: "调试", en: "Technician" },
  nav_admin: { zh: "用户", en: "Users" },
  nav_audit: { zh: "操作日志", en: "Audit log" },
  logout: { zh: "退出", en: "Log out" },
  lang_other: { zh: "English", en: "中文" },
  conn_live: { zh: "实时", en: "Live" },
  conn_lost: { zh: "连接中断，正在重连…", en: "Connection lost, reconnecting…" },
  // login / setup
  login_title: { zh: "值班登录", en: "Duty sign-in" },
  username: { zh: "账号", en: "Username" },
  password: { zh: "密码", en: "Password" },
  password_again: { zh: "确认密码", en: "Repeat password" },
  name: { zh: "姓名", en: "Name" },
  phone: { zh: "电话", en: "Phone" },
  login: { zh: "登录", en: "Sign in" },
  err_bad_credentials: { zh: "账号或密码错误，还可尝试 {n} 次", en: "Wrong username or password, {n} attempts left" },
  err_bad_credentials_plain: { zh: "账号或密码错误", en: "Wrong username or password" },
  err_locked: { zh: "账号已锁定，请联系管理员解锁", en: "Account locked; ask an administrator to unlock it" },
  err_locked_until: { zh: "账号已锁定，{t} 后自动解锁", en: "Account locked until {t}" },
  err_expired: { zh: "账号已过有效期", en: "This account has expired" },
  err_disabled: { zh: "账号已停用", en: "This account is disabled" },
  err_session: { zh: "会话已超时，请重新登录", en: "Session timed out, please sign in again" },
  err_forbidden: { zh: "无此操作权限", en: "You are not permitted to do this" },
  err_csrf: { zh: "安全校验失败，请刷新页面", en: "Security check failed, reload the page" },
  err_network: { zh: "无法连接网关", en: "Cannot reach the gateway" },
  err_generic: { zh: "操作失败：{e}", en: "Failed: {e}" },
  setup_title: { zh: "首次启动：创建管理员账号", en: "First start: create the administrator" },
  setup_hint: {
    zh: "系统没有默认密码。请为管理员设置至少 8 位的密码并妥善保管。",
    en: "There is no default password. Choose one of at least 8 characters and keep it safe.",
  },
  setup_submit: { zh: "创建管理员", en: "Create administrator" },
  err_pw_short: { zh: "密码至少 8 位", en: "The password needs at least 8 characters" },
  err_pw_mismatch: { zh: "两次输入的密码不一致", en: "The passwords differ" },
  // classes and priorities
  class_fire: { zh: "火警", en: "Fire" },
  class_fault: { zh: "故障", en: "Fault" },
  class_supervisory: { zh: "监管", en: "Supervisory" },
  class_security: { zh: "安防", en: "Security" },
  class_other: { zh: "其他", en: "Other" },
  prio_critical: { zh: "紧急", en: "Critical" },
  prio_high: { zh: "高", en: "High" },
  prio_medium: { zh: "中", en: "Medium" },
  prio_low: { zh: "低", en: "Low" },
  // alarm states (ISA-18.2)
  st_unacknowledged: { zh: "未确认", en: "Unacknowledged" },
  st_acknowledged: { zh: "已确认", en: "Acknowledged" },
  st_returned_unacknowledged: { zh: "已恢复未确认", en: "Cleared, unacknowledged" },
  st_latched: { zh: "锁存待复位", en: "Latched, reset needed" },
  st_shelved: { zh: "已搁置", en: "Shelved" },
  st_suppressed: { zh: "已抑制", en: "Suppressed" },
  st_out_of_service: { zh: "已屏蔽", en: "Out of service" },
  st_normal: { zh: "已恢复", en: "Normal" },
  // duty view
  duty_title: { zh: "当前报警", en: "Active alarms" },
  cnt_unacked: { zh: "未确认", en: "Unacked" },
  cnt_active: { zh: "报警中", en: "Active" },
  cnt_shelved: { zh: "搁置", en: "Shelved" },
  flood: { zh: "报警洪流：请优先处理紧急报警", en: "Alarm flood: handle critical alarms first" },
  no_alarms: { zh: "当前无报警，系统正常", en: "No active alarms, all normal" },
  col_time: { zh: "时间", en: "Time" },
  col_class: { zh: "类别", en: "Class" },
  col_prio: { zh: "级别", en: "Priority" },
  col_message: { zh: "报警内容", en: "Alarm" },
  col_location: { zh: "位置", en: "Location" },
  col_state: { zh: "状态", en: "State" },
  col_actions: { zh: "操作", en: "Actions" },
  col_value: { zh: "数值", en: "Value" },
  col_by: { zh: "操作人", en: "By" },
  col_event: { zh: "事件", en: "Event" },
  col_comment: { zh: "备注", en: "Comment" },
  ack: { zh: "确认", en: "Acknowledge" },
  ack_all: { zh: "全部确认", en: "Acknowledge all" },
  ack_all_q: { zh: "确认当前 {n} 条未确认报警？", en: "Acknowledge the {n} unacknowledged alarms?" },
  shelve: { zh: "搁置", en: "Shelve" },
  unshelve: { zh: "取消搁置", en: "Unshelve" },
  reset: { zh: "复位", en: "Reset" },
  comment: { zh: "备注", en: "Comment" },
  silence: { zh: "消音", en: "Silence" },
  sound_on: { zh: "启用声音", en: "Enable sound" },
  sound_blocked: { zh: "浏览器阻止了报警声，请点击启用", en: "The browser blocked the alarm sound: click to enable" },
  fire_banner: { zh: "火警！{n} 条火警未确认", en: "FIRE! {n} fire alarms unacknowledged" },
  fire_banner_first: { zh: "首警：{m}", en: "First: {m}" },
  shelve_title: { zh: "搁置报警", en: "Shelve alarm" },
  shelve_reason: { zh: "搁置原因", en: "Reason" },
  shelve_minutes: { zh: "搁置时长", en: "Shelve for" },
  minutes_n: { zh: "{n} 分钟", en: "{n} minutes" },
  hours_n: { zh: "{n} 小时", en: "{n} hours" },
  shelved_until: { zh: "搁置至 {t}", en: "Shelved until {t}" },
  comment_title: { zh: "添加备注", en: "Add a comment" },
  ack_title: { zh: "确认报警", en: "Acknowledge alarm" },
  ack_comment: { zh: "处理说明（可选）", en: "Note (optional)" },
  ok: { zh: "确定", en: "OK" },
  cancel: { zh: "取消", en: "Cancel" },
  close: { zh: "关闭", en: "Close" },
  required: { zh: "必填", en: "Required" },
  done: { zh: "已完成", en: "Done" },
  // linkage
  linkage_title: { zh: "联动控制", en: "Linkage" },
  linkage_none: { zh: "无联动规则", en: "No linkage rules" },
  linkage_confirm: { zh: "确认启动", en: "Confirm" },
  linkage_cancel: { zh: "取消联动", en: "Cancel" },
  linkage_confirm_q: { zh: "确认启动联动“{r}”？现场设备将动作。", en: "Start linkage “{r}”? Field equipment will move." },
  linkage_cancel_q: { zh: "取消联动“{r}”？", en: "Cancel linkage “{r}”?" },
  linkage_log: { zh: "联动记录", en: "Linkage log" },
  lk_idle: { zh: "待命", en: "Idle" },
  lk_awaiting_confirm: { zh: "等待确认", en: "Awaiting confirmation" },
  lk_running: { zh: "执行中", en: "Running" },
  lk_done: { zh: "已联动", en: "Done, holding" },
  lk_restoring: { zh: "复位中", en: "Restoring" },
  lk_cancelled: { zh: "已取消", en: "Cancelled" },
  lk_failed: { zh: "失败", en: "Failed" },
  lkk_requested: { zh: "下发指令", en: "Command sent" },
  lkk_written: { zh: "已写入", en: "Written" },
  lkk_verified: { zh: "已回读确认", en: "Verified" },
  lkk_failed: { zh: "失败", en: "Failed" },
  lkk_skipped: { zh: "已跳过", en: "Skipped" },
  lkk_blocked: { zh: "被闭锁", en: "Blocked" },
  lkk_started: { zh: "启动", en: "Started" },
  lkk_waiting: { zh: "等待反馈", en: "Waiting" },
  lkk_completed: { zh: "联动完成", en: "Completed" },
  lkk_aborted: { zh: "已中止", en: "Aborted" },
  lkk_cancelled: { zh: "已取消", en: "Cancelled" },
  lkk_confirm_requested: { zh: "等待人工确认", en: "Awaiting confirmation" },
  lkk_confirmed: { zh: "已人工确认", en: "Confirmed" },
  lkk_restored: { zh: "已复原", en: "Restored" },
  lkk_restoring: { zh: "开始复原", en: "Restoring" },
  mode_automatic: { zh: "自动联动", en: "Automatic" },
  mode_confirm: { zh: "人工确认后联动", en: "Operator confirms" },
  step_n: { zh: "第 {i}/{n} 步", en: "step {i}/{n}" },
  mode_manual: { zh: "手动", en: "Manual" },
  // history
  history_title: { zh: "报警历史查询", en: "Alarm history" },
  f_since: { zh: "开始", en: "From" },
  f_until: { zh: "结束", en: "To" },
  f_prio: { zh: "级别", en: "Priority" },
  f_class: { zh: "类别", en: "Class" },
  f_device: { zh: "设备", en: "Device" },
  f_text: { zh: "关键字", en: "Text" },
  f_all: { zh: "全部", en: "All" },
  search: { zh: "查询", en: "Search" },
  export_csv: { zh: "导出 CSV", en: "Export CSV" },
  rows_n: { zh: "共 {n} 条", en: "{n} rows" },
  prev_page: { zh: "上一页", en: "Previous" },
  next_page: { zh: "下一页", en: "Next" },
  tr_raised: { zh: "报警", en: "Raised" },
  tr_acked: { zh: "确认", en: "Acknowledged" },
  tr_cleared: { zh: "恢复", en: "Cleared" },
  tr_returned: { zh: "恢复", en: "Returned" },
  tr_shelved: { zh: "搁置", en: "Shelved" },
  tr_unshelved: { zh: "取消搁置", en: "Unshelved" },
  tr_realarm: { zh: "再次报警", en: "Re-alarmed" },
  tr_reset: { zh: "复位", en: "Reset" },
  tr_comment: { zh: "备注", en: "Comment" },
  tr_commented: { zh: "备注", en: "Comment" },
  tr_suppressed: { zh: "抑制", en: "Suppressed" },
  tr_unsuppressed: { zh: "解除抑制", en: "Unsuppressed" },
  tr_out_of_service: { zh: "屏蔽", en: "Out of service" },
  tr_in_service: { zh: "解除屏蔽", en: "Back in service" },
  // stats
  stats_title: { zh: "报警统计", en: "Alarm statistics" },
  stats_days: { zh: "统计天数", en: "Days" },
  stats_per_day: { zh: "每日报警数（按类别）", en: "Alarms per day by class" },
  stats_mix: { zh: "类别构成", en: "Class mix" },
  stats_top: { zh: "高频报警", en: "Most frequent alarms" },
  stats_count: { zh: "次数", en: "Count" },
  no_data: { zh: "暂无数据", en: "No data" },
  // site
  site_title: { zh: "设备与点位", en: "Devices and points" },
  site_filter: { zh: "筛选设备或点位", en: "Filter devices or points" },
  building: { zh: "楼栋", en: "Building" },
  floor: { zh: "楼层", en: "Floor" },
  zone: { zh: "分区", en: "Zone" },
  no_building: { zh: "未分楼栋", en: "No building" },
  online: { zh: "在线", en: "Online" },
  offline: { zh: "离线", en: "Offline" },
  unknown: { zh: "未知", en: "Unknown" },
  fault_state: { zh: "故障", en: "Fault" },
  q_good: { zh: "正常", en: "Good" },
  q_uncertain: { zh: "可疑", en: "Uncertain" },
  q_bad: { zh: "无效", en: "Bad" },
  more_points: { zh: "其余 {n} 个点位", en: "{n} more points" },
  points_n: { zh: "{n} 个点位", en: "{n} points" },
  alarms_n: { zh: "{n} 条报警", en: "{n} alarms" },
  devices_n: { zh: "{n} 台设备", en: "{n} devices" },
  details: { zh: "详情", en: "Details" },
  on: { zh: "是", en: "On" },
  off: { zh: "否", en: "Off" },
  // device detail
  device_title: { zh: "设备详情", en: "Device" },
  trend: { zh: "趋势", en: "Trend" },
  trend_point: { zh: "点位", en: "Point" },
  range_1h: { zh: "1 小时", en: "1 hour" },
  range_6h: { zh: "6 小时", en: "6 hours" },
  range_24h: { zh: "24 小时", en: "24 hours" },
  range_7d: { zh: "7 天", en: "7 days" },
  device_alarms: { zh: "本设备报警", en: "This device's alarms" },
  poll_stats: { zh: "采集统计", en: "Polling" },
  stat_polls_ok: { zh: "采集成功次数", en: "Polls OK" },
  stat_polls_failed: { zh: "采集失败次数", en: "Polls failed" },
  stat_success_rate: { zh: "成功率", en: "Success rate" },
  stat_reads_ok: { zh: "读取成功", en: "Reads OK" },
  stat_reads_failed: { zh: "读取失败", en: "Reads failed" },
  stat_device_errors: { zh: "设备错误", en: "Device errors" },
  stat_skipped_ticks: { zh: "错过的采集周期", en: "Skipped ticks" },
  stat_last_latency_ms: { zh: "最近时延 (ms)", en: "Last latency (ms)" },
  stat_last_ok_wall: { zh: "最近成功", en: "Last success" },
  back: { zh: "返回", en: "Back" },
  // zones
  zones_title: { zh: "分区平面图", en: "Zone map" },
  zone_ok: { zh: "正常", en: "Normal" },
  // health
  health_title: { zh: "网关运行状态", en: "Gateway health" },
  uplink: { zh: "上云链路", en: "Uplink" },
  uplink_none: { zh: "未配置上云", en: "No uplink configured" },
  connected: { zh: "已连接", en: "Connected" },
  disconnected: { zh: "未连接", en: "Disconnected" },
  outbox: { zh: "待发缓存", en: "Outbox backlog" },
  gateway_id: { zh: "网关编号", en: "Gateway id" },
  connected_since: { zh: "连接时间", en: "Connected since" },
  last_error: { zh: "最近错误", en: "Last error" },
  last_refusal: { zh: "最近拒收", en: "Last refusal" },
  acked_n: { zh: "已确认", en: "Acked" },
  in_flight: { zh: "在途", en: "In flight" },
  refused: { zh: "被拒", en: "Refused" },
  counters: { zh: "计数器", en: "Counters" },
  records: { zh: "记录数", en: "Records" },
  bytes: { zh: "大小", en: "Size" },
  oldest: { zh: "最早", en: "Oldest" },
  lane: { zh: "通道", en: "Lane" },
  lane_event: { zh: "事件", en: "Events" },
  lane_events: { zh: "事件", en: "Events" },
  lane_telemetry: { zh: "遥测数据", en: "Telemetry" },
  last_ack: { zh: "中心最后确认", en: "Last central ack" },
  never: { zh: "从未", en: "Never" },
  system: { zh: "系统资源", en: "System" },
  cpu: { zh: "CPU", en: "CPU" },
  memory: { zh: "内存", en: "Memory" },
  disk: { zh: "磁盘剩余", en: "Disk free" },
  load: { zh: "负载", en: "Load" },
  uptime: { zh: "运行时长", en: "Uptime" },
  device_polls: { zh: "设备采集", en: "Device polling" },
  success_rate: { zh: "成功率", en: "Success" },
  latency: { zh: "时延", en: "Latency" },
  polls_ok: { zh: "成功", en: "OK" },
  polls_failed: { zh: "失败", en: "Failed" },
  device: { zh: "设备", en: "Device" },
  state: { zh: "状态", en: "State" },
  // technician
  tech_title: { zh: "调试与维护", en: "Technician" },
  tech_pick: { zh: "选择设备", en: "Choose a device" },
  registers: { zh: "原始寄存器", en: "Raw registers" },
  table: { zh: "表", en: "Table" },
  address: { zh: "地址", en: "Address" },
  type: { zh: "类型", en: "Type" },
  raw: { zh: "原始值", en: "Raw" },
  value: { zh: "工程值", en: "Value" },
  test_write: { zh: "测试写入", en: "Test write" },
  write: { zh: "写入", en: "Write" },
  write_q: {
    zh: "向 {d} 的点位 {p} 写入 {v}？现场设备将实际动作。",
    en: "Write {v} to {p} of {d}? The field device will act on it.",
  },
  write_ok: { zh: "写入成功，回读值 {v}", en: "Written; read back {v}" },
  scenarios: { zh: "模拟场景注入", en: "Scenario injection" },
  scenarios_off: { zh: "未配置模拟器", en: "No simulators configured" },
  scenario: { zh: "场景", en: "Scenario" },
  params: { zh: "参数 (JSON)", en: "Parameters (JSON)" },
  inject: { zh: "注入", en: "Inject" },
  inject_q: { zh: "向 {d} 注入场景 {s}？", en: "Inject {s} into {d}?" },
  injected: { zh: "已注入", en: "Injected" },
  config_check: { zh: "配置检查", en: "Configuration check" },
  check_ok: { zh: "配置检查通过", en: "The configuration is valid" },
  run_check: { zh: "运行检查", en: "Run check" },
  bad_json: { zh: "参数不是有效的 JSON", en: "The parameters are not valid JSON" },
  // admin
  users_title: { zh: "用户管理", en: "Users" },
  add_user: { zh: "新增用户", en: "Add user" },
  edit_user: { zh: "编辑用户", en: "Edit user" },
  role: { zh: "角色", en: "Role" },
  role_viewer: { zh: "查看员", en: "Viewer" },
  role_operator: { zh: "值班员", en: "Duty operator" },
  role_technician: { zh: "维保技术员", en: "Technician" },
  role_admin: { zh: "管理员", en: "Administrator" },
  valid_until: { zh: "有效期至", en: "Valid until" },
  session_timeout: { zh: "会话超时（分钟）", en: "Session timeout (min)" },
  max_attempts: { zh: "最大登录尝试", en: "Max login attempts" },
  disabled: { zh: "停用", en: "Disabled" },
  locked: { zh: "已锁定", en: "Locked" },
  unlock: { zh: "解锁", en: "Unlock" },
  new_password: { zh: "重置密码（留空不变）", en: "New password (blank: unchanged)" },
  edit: { zh: "编辑", en: "Edit" },
  save: { zh: "保存", en: "Save" },
  saved: { zh: "已保存", en: "Saved" },
  active_user: { zh: "正常", en: "Active" },
  audit_title: { zh: "操作日志", en: "Audit log" },
  user: { zh: "用户", en: "User" },
  action: { zh: "操作", en: "Action" },
  target: { zh: "对象", en: "Target" },
  result: { zh: "结果", en: "Result" },
  client_ip: { zh: "客户端 IP", en: "Client IP" },
  act_setup: { zh: "首次设置", en: "First setup" },
  act_login: { zh: "登录", en: "Sign-in" },
  act_login_failed: { zh: "登录失败", en: "Sign-in failed" },
  act_lockout: { zh: "账号锁定", en: "Locked out" },
  act_login_locked: { zh: "锁定中登录", en: "Sign-in while locked" },
  act_logout: { zh: "退出", en: "Sign-out" },
  act_csrf_refused: { zh: "CSRF 拒绝", en: "CSRF refused" },
  act_ack: { zh: "确认报警", en: "Acknowledge" },
  act_ack_all: { zh: "全部确认", en: "Acknowledge all" },
  act_shelve: { zh: "搁置", en: "Shelve" },
  act_unshelve: { zh: "取消搁置", en: "Unshelve" },
  act_reset: { zh: "复位", en: "Reset" },
  act_comment: { zh: "备注", en: "Comment" },
  act_linkage_confirm: { zh: "确认联动", en: "Confirm linkage" },
  act_linkage_cancel: { zh: "取消联动", en: "Cancel linkage" },
  act_write: { zh: "写入", en: "Write" },
  act_inject: { zh: "注入场景", en: "Inject scenario" },
  act_scenario_stop: { zh: "结束场景", en: "End scenario" },
  act_export_history: { zh: "导出历史", en: "Export history" },
  act_user_create: { zh: "新增用户", en: "Create user" },
  act_user_update: { zh: "修改用户", en: "Update user" },
  write_placeholder: { zh: "true/false 或数字", en: "true/false or a number" },
  not_found: { zh: "页面不存在", en: "Page not found" },
};

const STORAGE_KEY = "gh_lang";
let current = detect();
const listeners = new Set();

function detect() {
  const stored = localStorage.getItem(STORAGE_KEY);
  if (stored === "zh" || stored === "en") return stored;
  return prefersChinese(navigator.languages || [navigator.language]) ? "zh" : "en";
}

/** Chinese when the browser's first Chinese or English preference is Chinese. */
export function prefersChinese(languages) {
  for (const tag of languages) {
    const l = String(tag).toLowerCase();
    if (l.startsWith("zh")) return true;
    if (l.startsWith("en")) return false;
  }
  return false;
}

export function lang() {
  return current;
}

export function setLang(value) {
  if (value !== "zh" && value !== "en") return;
  current = value;
  localStorage.setItem(STORAGE_KEY, value);
  document.documentElement.lang = value === "zh" ? "zh-CN" : "en";
  for (const fn of listeners) fn(value);
}

export function onLangChange(fn) {
  listeners.add(fn);
}

/** Translate a key; {name} placeholders are filled from vars. Unknown keys show themselves. */
export function t(key, vars) {
  const entry = STRINGS[key];
  let text = entry ? entry[current] : key;
  if (vars) {
    for (const [k, v] of Object.entries(vars)) text = text.replaceAll(`{${k}}`, String(v));
  }
  return text;
}

/** Key exists? (for optional labels such as transitions and linkage states). */
export function has(key) {
  return Object.hasOwn(STRINGS, key);
}

/** Pick the right language of a {zh, en} message, falling back to the other one. */
export function pick(message) {
  if (message == null) return "";
  if (typeof message === "string") return message;
  return message[current] || message.zh || message.en || "";
}

/** Name of a device/point/site in the current language (objects carry name and name_zh). */
export function nameOf(obj) {
  if (!obj) return "";
  if (current === "zh" && obj.name_zh) return obj.name_zh;
  return obj.name || obj.name_zh || obj.id || "";
}

document.documentElement.lang = current === "zh" ? "zh-CN" : "en";
