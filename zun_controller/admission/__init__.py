"""Admission: the one path every writer's creates and updates take to the store — the REST
API, the Zun v1 API, GitOps, the Kubernetes bridge and the controller's own children.

It validates sizes and quantities, refuses admin-only fields and ports outside the policy to
writers without admin rights, checks owner references and Cluster use, fills resource
defaults, and charges quotas in the record's own transaction. It may import the engine (the
event recorder), the store and the models; the API, bridge, GitOps and reconcilers import it.
"""

from zun_controller.admission.admit import Admission
from zun_controller.admission.policy import ADMIN, AdmissionPolicy, Writer

__all__ = ["ADMIN", "Admission", "AdmissionPolicy", "Writer"]
