"""(being written)"""
def run(graph):
    return {}
