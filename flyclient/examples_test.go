package flyclient_test

// Examples from shared/fly-machines-api.md (§2.6, §3) and shapes it
// describes; they seed the fuzz corpus and the decoding specs.

// exampleMachine is the reference's §3 machine (create/list response).
const exampleMachine = `{
  "id": "1857156b526dd8", "name": "aged-thunder-7371", "state": "created", "region": "ord",
  "instance_id": "01HEPA330HZ37A78TK080NAK1M", "private_ip": "fdaa:ff:ff:a7b:195:e229:8038:2",
  "image_ref": {"registry":"registry-1.docker.io","repository":"library/ubuntu","tag":"latest",
                "digest":"sha256:abc","labels":{}},
  "created_at": "2023-11-08T01:52:30Z", "updated_at": "2023-11-08T01:52:30Z",
  "config": { "image": "registry-1.docker.io/library/ubuntu:latest", "restart": {"policy":"always"},
              "guest": {"cpu_kind":"shared","cpus":1,"memory_mb":256}, "auto_destroy": true, "dns": {} },
  "events": [ {"type":"launch","status":"created","source":"user","timestamp":1699408350300} ],
  "checks": [ {"name":"servicecheck-00-tcp-8080","status":"passing","output":"Success","updated_at":"2023-10-12T21:23:26.014Z"} ],
  "nonce": "5c35f65c9f95", "host_status": "ok", "cordoned": false
}`

// exampleServices has both autostop encodings and the duration forms.
const exampleServices = `{
  "id": "3d8d413b29d089", "name": "fd-x", "state": "started", "region": "iad",
  "config": {
    "image": "runner:1",
    "env": {"MCP_PACKAGE": "left-pad", "API_KEY": "hunter2"},
    "metadata": {"deployment_id": "d-1", "fly_process_group": "app"},
    "services": [
      {"protocol":"tcp","internal_port":8080,"autostart":true,"autostop":"suspend","min_machines_running":0,
       "ports":[{"port":80,"handlers":["http"],"force_https":true},{"port":443,"handlers":["tls","http"]}],
       "concurrency":{"type":"connections","soft_limit":20,"hard_limit":25},
       "checks":[{"type":"http","port":8080,"interval":"15s","timeout":2000000000,"grace_period":{"time.Duration":5000000000},"method":"GET","path":"/status"}]},
      {"protocol":"udp","internal_port":53,"autostop":false},
      {"protocol":"tcp","internal_port":9000,"autostop":true}
    ],
    "checks": {"alive": {"type":"tcp","port":8080,"interval":"30s","timeout":"5s","kind":"readiness"}},
    "restart": {"policy":"on-failure","max_retries":10},
    "stop_config": {"signal":"SIGTERM","timeout":"10s"},
    "mounts": [{"volume":"vol_123","path":"/data"}],
    "init": {"cmd":["npx","-y","left-pad"]}
  }
}`

// exampleExitEvents is a newest-first event list: the 2026 exit sample
// (exited_at RFC 3339), a start, an old-style exit nested under MonitorEvent
// with exited_at in epoch ms, and a launch.
const exampleExitEvents = `[
  {"id":"01J5QZ0000000000000000000D","type":"exit","status":"stopped","source":"flyd","timestamp":1786846888614,
   "request":{"exit_event":{"requested_stop":true,"restarting":false,"guest_exit_code":0,"guest_signal":-1,"guest_error":"",
     "exit_code":0,"signal":-1,"error":"","oom_killed":false,"exited_at":"2026-08-16T02:21:28.614Z"},"restart_count":0}},
  {"id":"01J5QZ0000000000000000000C","type":"stop","status":"stopping","source":"user","timestamp":1786846888000,"request":{"reason":""}},
  {"id":"01J5QZ0000000000000000000B","type":"start","status":"started","source":"flyd","timestamp":1786846800000},
  {"id":"01J5QZ0000000000000000000A","type":"exit","status":"stopped","source":"flyd","timestamp":1786846700000,
   "request":{"MonitorEvent":{"exit_event":{"exit_code":137,"oom_killed":true,"requested_stop":false,"restarting":true,
     "exited_at":1786846699000}},"restart_count":2}},
  {"id":"01J5QZ00000000000000000009","type":"start","status":"started","source":"flyd","timestamp":1786846600000},
  {"id":"01J5QZ00000000000000000008","type":"launch","status":"created","source":"user","timestamp":1786846500000}
]`

// exampleCrashEvents: a crash loop still restarting (reference §4.2).
const exampleCrashEvents = `[
  {"type":"exit","status":"stopped","source":"flyd","timestamp":1786846900000,
   "request":{"exit_event":{"exit_code":1,"requested_stop":false,"restarting":true,"exited_at":"2026-08-16T02:21:40Z"},"restart_count":3}},
  {"type":"start","status":"starting","source":"user","timestamp":1786846899000}
]`
