def check_stock(order_id):
    raise ValueError(
        f"order {order_id}: out of stock (this is a demonstration error; fail-python always fails)"
    )


def process_order(order_id):
    check_stock(order_id)
    return {"order_id": order_id, "status": "shipped"}


def handler(event, context):
    return process_order(event.get("order_id", 42))
