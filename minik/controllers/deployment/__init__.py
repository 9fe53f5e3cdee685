"""minik.controllers.deployment: the deployment controller and the rules it rolls out by.

`controller` is `DeploymentController`; `sizes` holds its pure rules,
testable without a server. This package imports none of its modules: the
manager imports `controller`.
"""
