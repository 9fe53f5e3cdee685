"""The persistent-volume controllers: the binder (`binder`, Kubernetes'
`persistentvolume` controller: claims to volumes, phases, provisioning
requests, reclaim, expansion; the volume matching it shares with the
scheduler is `minik.api.volumematching`), and the pvc-protection and
pv-protection controllers (`protection`).
"""
