function checkStock(orderId) {
  throw new Error(
    `order ${orderId}: out of stock (this is a demonstration error; fail-nodejs always fails)`
  );
}

function processOrder(orderId) {
  checkStock(orderId);
  return { orderId, status: 'shipped' };
}

function handler(event, context) {
  return processOrder(event.order_id ?? 42);
}
