"""(being written)"""
def run(graph, B):
    return {}
