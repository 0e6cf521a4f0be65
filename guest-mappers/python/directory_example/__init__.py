"""A small Interstate mapper that asks the studio's directory (LDAP, Active Directory) itself.

The policy is in ``policy.py``, in plain Python values; ``directory_app.py`` is the component
entry point that connects it to the WIT bindings.
"""
