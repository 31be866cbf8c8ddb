# Sidekiq 6.4 (Debian's ruby-sidekiq) worker for qctl's tests: `sidekiq -r ./worker.rb -q QUEUE`.
#
# QctlJob.perform(error_class, message) raises error_class (a Ruby class such as ArgumentError, or any
# other name, defined here as a StandardError subclass) while QCTL_JOBS_FAIL=1, and returns otherwise
# (error_class "QctlSleep" sleeps `message` seconds instead, whatever QCTL_JOBS_FAIL says):
# the same job fails for real first (into `retry`, or `dead` when pushed with retry: 0) and, once qctl
# has retried it, completes under a worker started with QCTL_JOBS_FAIL=0.
#
# QCTL_SIDEKIQ_REPORT=<file>: a server middleware counts completed and failed jobs and writes
# {"completed": n, "failed": m} there every 0.2 s and at shutdown (tests/frameworks/fixtures.py reads it).
# QCTL_SIDEKIQ_QUIET=1 drops Sidekiq's per-failure error log (bulk runs).  REDIS_URL picks the Redis.
require "json"
require "sidekiq"

# redis-rb 4.8 warns on every SADD Sidekiq 6.4 makes; the warning is about redis-rb 5, not us.
Redis.silence_deprecations = true if Redis.respond_to?(:silence_deprecations=)

def qctl_error_class(name)
  found = Object.const_get(name) if Object.const_defined?(name)
  return found if found.is_a?(Class) && found <= Exception

  Object.const_set(name, Class.new(StandardError))
end

class QctlJob
  include Sidekiq::Worker

  def perform(error_class, message)
    return sleep(Float(message)) if error_class == "QctlSleep" # a job that runs for a while: busy-set tests
    raise qctl_error_class(error_class), message if error_class && ENV["QCTL_JOBS_FAIL"] == "1"

    "ok"
  end
end

class QctlCounter
  COUNTS = { "completed" => 0, "failed" => 0 }
  LOCK = Mutex.new

  def self.bump(key)
    LOCK.synchronize { COUNTS[key] += 1 }
  end

  def self.write(path)
    snapshot = LOCK.synchronize { COUNTS.dup }
    File.write("#{path}.tmp", JSON.dump(snapshot))
    File.rename("#{path}.tmp", path)
  end

  def call(_worker, _job, _queue)
    yield
    QctlCounter.bump("completed")
  rescue Exception # rubocop:disable Lint/RescueException -- count, then let Sidekiq's retry handle it
    QctlCounter.bump("failed")
    raise
  end
end

# The dead set keeps 10,000 jobs by default; scale tests need far more.
Sidekiq.options[:dead_max_jobs] = 10_000_000

Sidekiq.configure_server do |config|
  config.server_middleware { |chain| chain.add QctlCounter }
  Sidekiq.error_handlers.clear if ENV["QCTL_SIDEKIQ_QUIET"] == "1"
  report = ENV["QCTL_SIDEKIQ_REPORT"]
  if report
    QctlCounter.write(report)
    Thread.new { loop { sleep 0.2; QctlCounter.write(report) } }
    config.on(:shutdown) { QctlCounter.write(report) }
  end
end
