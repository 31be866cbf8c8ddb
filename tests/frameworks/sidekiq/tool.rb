# Sidekiq producer and set operations for qctl's tests (tests/frameworks/fixtures.py runs it).
#
#   ruby tool.rb push QUEUE OK FAILING ERROR_CLASS MESSAGE RETRY   Sidekiq::Client.push_bulk, 1000 a call;
#                                                                  RETRY: true (25 tries), false, or a count (0: dead)
#   ruby tool.rb retry-all retry|dead                               RetrySet#retry_all / DeadSet#retry_all
#   ruby tool.rb sizes QUEUE                                        the queue's length and its jobs in retry/dead
#
# Prints one JSON line.  REDIS_URL picks the Redis (the fixtures use db 5).
require_relative "worker"
require "sidekiq/api"

BATCH = 1000

def retry_option(text)
  return true if text == "true"
  return false if text == "false"

  Integer(text)
end

def push(queue, ok, failing, error_class, message, retry_value)
  args = Array.new(ok) { [nil, "ok"] } + Array.new(failing) { [error_class, message] }
  args.each_slice(BATCH) do |slice|
    Sidekiq::Client.push_bulk("class" => QctlJob, "args" => slice, "queue" => queue, "retry" => retry_value)
  end
  { "pushed" => args.size }
end

def sizes(queue)
  # The sets are shared by every queue of the db: count this queue's jobs only.
  { "queue" => Sidekiq::Queue.new(queue).size, "retry" => Sidekiq::RetrySet.new.count { |job| job.queue == queue },
    "dead" => Sidekiq::DeadSet.new.count { |job| job.queue == queue } }
end

command, *args = ARGV
started = Process.clock_gettime(Process::CLOCK_MONOTONIC)
result =
  case command
  when "push" then push(args[0], Integer(args[1]), Integer(args[2]), args[3], args[4], retry_option(args[5]))
  when "retry-all"
    set = args[0] == "dead" ? Sidekiq::DeadSet.new : Sidekiq::RetrySet.new
    before = set.size
    set.retry_all
    { "retried" => before }
  when "sizes" then sizes(args[0])
  else abort("unknown command #{command}")
  end
result["seconds"] = Process.clock_gettime(Process::CLOCK_MONOTONIC) - started
puts JSON.dump(result)
