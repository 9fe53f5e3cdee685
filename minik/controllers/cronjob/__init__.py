"""The CronJob controller (Kubernetes' cronjob controller v2): schedules and the sync."""
