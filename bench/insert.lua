-- wrk script for bench_central_http.py: POST /api.php insert, every body unique, answers counted.
-- Credentials come from the environment (BENCH_LOGIN, BENCH_SENHA, BENCH_TOKEN, BENCH_CAMPAIGN).

local threads = {}
local next_tid = 0

function setup(thread)
  next_tid = next_tid + 1
  thread:set("tid", next_tid)
  table.insert(threads, thread)
end

function init(args)
  login = os.getenv("BENCH_LOGIN")
  senha = os.getenv("BENCH_SENHA")
  token = os.getenv("BENCH_TOKEN")
  campaign = os.getenv("BENCH_CAMPAIGN")
  counter = 0
  ok = 0
  other = 0
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  counter = counter + 1
  local body = string.format(
    '{"acao":"insert","idcampanha":"%s","login":"%s","senha":"%s","token":"%s",' ..
    '"idcrm":"%d","cliente":"BENCH %d-%d","cpf":"346150521852","ddd1":"11","tel1":"4%07d",' ..
    '"ddd2":"21","tel2":"12345678","cidade":"SÃO PAULO","gen1":"bench"}',
    campaign, login, senha, token, counter, tid, counter, counter % 10000000)
  return wrk.format(nil, "/api.php", nil, body)
end

function response(status, headers, body)
  if status == 200 and body == '["Status","OK"]' then
    ok = ok + 1
  else
    other = other + 1
  end
end

function done(summary, latency, requests)
  local tok, tother = 0, 0
  for _, t in ipairs(threads) do
    tok = tok + t:get("ok")
    tother = tother + t:get("other")
  end
  io.write(string.format("BENCH_RESULT ok=%d other=%d p50_us=%d p99_us=%d\n", tok, tother,
    latency:percentile(50), latency:percentile(99)))
end
