import { describe, expect, it } from 'vitest';
import { eventListProblems, eventMatcher, isEventPattern, webhookEventTypes, webhookUrlProblem } from './webhook-events.js';

describe('webhook event filters', () => {
  it('accepts known types, * and wildcards over known prefixes only', () => {
    for (const p of [...webhookEventTypes, '*', 'message.*', 'message.status.*', 'session.*', 'contact.*']) expect(isEventPattern(p), p).toBe(true);
    for (const p of ['message', 'message.status', 'mess*', 'message.status.bounced', 'teleport.*', '*.received', 'Message.received', '']) expect(isEventPattern(p), p).toBe(false);
  });

  it('matches by exact name and by prefix wildcard', () => {
    const matches = eventMatcher(['message.status.*', 'flow.finished']);
    expect(webhookEventTypes.filter(matches)).toEqual(['message.status.sent', 'message.status.delivered', 'message.status.read', 'message.status.failed', 'flow.finished']);
    expect(webhookEventTypes.every(eventMatcher(['*']))).toBe(true);
    expect(eventMatcher(['message.*'])('message.received')).toBe(true);
    expect(eventMatcher(['message.received'])('message.status.sent')).toBe(false);
  });

  it('names the entry of the list that is wrong', () => {
    expect(eventListProblems(['message.received'])).toEqual({});
    expect(Object.keys(eventListProblems(['message.received', 'nope', 'message.received']))).toEqual(['events[1]', 'events[2]']);
    expect(Object.keys(eventListProblems([]))).toEqual(['events']);
    expect(Object.keys(eventListProblems('message.received'))).toEqual(['events']);
  });
});

describe('webhook URLs', () => {
  it('takes absolute http(s) URLs, loopback included, and refuses other schemes and credentials', () => {
    for (const ok of ['https://example.com/hooks', 'http://127.0.0.1:8080/x?y=1', 'https://[::1]/h']) expect(webhookUrlProblem(ok), ok).toBeNull();
    for (const bad of ['ftp://example.com', 'file:///etc/passwd', 'javascript:alert(1)', '/relative', 'https://u:p@example.com', 'https://u@example.com', '', 42]) {
      expect(webhookUrlProblem(bad), String(bad)).toMatch(/^url /);
    }
  });
});
