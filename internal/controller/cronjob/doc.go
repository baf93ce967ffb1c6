// Package cronjob is the cronjob controller: it starts a Job for each
// activation of a CronJob's schedule, as upstream does.
//
// Schedules are parsed here (Parse, Schedule.Next, MostRecent: pure and
// table-tested), evaluated in spec.timeZone (time.LoadLocation; the
// server's local zone when unset). Each sync rebuilds status.active from
// the jobs the cron job controls, records lastSuccessfulTime, trims
// finished jobs to the history limits, then starts the most recent missed
// activation unless suspended, past startingDeadlineSeconds, or blocked by
// concurrencyPolicy (Forbid skips, Replace deletes the running jobs). Job
// names are <cronjob>-<scheduled minutes since the epoch>, so a repeated
// sync collides on the name instead of starting a job twice. Sync returns
// the wait until the next activation and the controller requeues the key
// exactly then (on the injected clock).
package cronjob
