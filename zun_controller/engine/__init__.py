"""Controller engine: informers, workqueue, reconcile loop, manager, leader election.

May import models and store; nothing above.
"""
