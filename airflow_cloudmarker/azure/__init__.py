"""Azure helpers shared by cloud and event plugins (public: users' own Azure plugins may import them).

``normalize`` shapes Azure records without the SDK (NSG rules as common firewall rules, VM disk
encryption); ``arm`` authenticates and pages through Azure Resource Manager.
"""
