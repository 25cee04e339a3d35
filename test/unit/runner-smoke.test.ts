import { test } from 'node:test';
import assert from 'node:assert/strict';
test('runner counts a passing test', () => { assert.equal(1 + 1, 2); });
