import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { queryTokens, searchTokens } from '../src/index.js';

describe('search tokens', () => {
  it('split identifiers the way people search for them', () => {
    assert.deepEqual(searchTokens('customer_orders'), ['customer', 'orders']);
    assert.deepEqual(searchTokens('orderDate2'), ['orderdate2', 'order', 'date', '2']);
    assert.deepEqual(searchTokens('HTTPServer logs'), ['httpserver', 'http', 'server', 'logs']);
    assert.deepEqual(searchTokens('Café Zürich'), ['cafe', 'zurich']);
  });

  it('turn SQL and FTS metacharacters into nothing', () => {
    assert.deepEqual(queryTokens(`x' OR 1=1; DROP TABLE datasets; --`), ['x', 'or', '1', 'drop', 'table', 'datasets']);
    assert.deepEqual(queryTokens('"* NEAR( ) ^ - + ~ <>'), ['near']);
    assert.deepEqual(queryTokens('%_\\'), []);
  });
});
