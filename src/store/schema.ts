/**
 * Database shapes (`…Row` in the repositories). Both engines store the same types:
 * times are Unix milliseconds (bigint on PostgreSQL, integer on SQLite), JSON is text,
 * booleans are 0/1 integers and ids are UUIDv7 text. Keeping the column types
 * portable keeps every dialect difference inside the store.
 */
import type { ColumnType, Insertable, Selectable, Updateable } from 'kysely';

export interface WorkspaceTable {
  id: string;
  name: string;
  settings: string;
  created_at: number;
  /** Moves whenever the workspace's triggers, stop conditions or segments change. */
  automation_version: Generated<number>;
}

export interface UserTable {
  id: string;
  workspace_id: string;
  email: string;
  name: string;
  password_hash: string | null;
  role: string;
  created_at: number;
}

export interface ApiTokenTable {
  id: string;
  workspace_id: string;
  user_id: string | null;
  name: string;
  token_hash: string;
  prefix: string;
  scopes: string;
  rate_limit: number | null;
  created_at: number;
  last_used_at: number | null;
  revoked_at: number | null;
}

export interface ContactTable {
  id: string;
  workspace_id: string;
  phone: string | null;
  email: string | null;
  name: string | null;
  first_name: string | null;
  last_name: string | null;
  metadata: string;
  timezone: string | null;
  language: string | null;
  source: string;
  search_text: string;
  opted_in_at: number | null;
  opted_out_at: number | null;
  whatsapp_opted_out_at: number | null;
  sms_opted_out_at: number | null;
  email_opted_out_at: number | null;
  whatsapp_last_inbound_at: number | null;
  sms_last_inbound_at: number | null;
  last_message_at: number | null;
  total_messages: number;
  created_at: number;
  updated_at: number;
  /** The caller's own id for the contact (the subscribers API's externalId). */
  external_id: Generated<string | null>;
}

export interface TagTable {
  id: string;
  workspace_id: string;
  name: string;
  name_key: string;
  created_at: number;
}

export interface ContactTagTable {
  workspace_id: string;
  contact_id: string;
  tag_id: string;
  created_at: number;
}

export interface IdempotencyKeyTable {
  token_id: string;
  key: string;
  workspace_id: string;
  method: string;
  path: string;
  request_hash: string;
  status_code: number;
  response_body: string;
  created_at: number;
  expires_at: number;
}

export interface RateLimitTable {
  token_id: string;
  window_start: number;
  count: number;
}

export interface TemplateTable {
  id: string;
  workspace_id: string;
  name: string;
  language: string;
  /** UTILITY | MARKETING | AUTHENTICATION */
  category: string;
  /** APPROVED | PENDING | REJECTED */
  status: string;
  /** `{ header?, body, footer?, buttons? }` as JSON. */
  components: string;
  provider_template_id: string | null;
  rejected_reason: string | null;
  created_at: number;
  updated_at: number;
}

/** An editable email: a step's own (definition_id and node_id set) or a library template (both null). */
export interface EmailTemplateTable {
  id: string;
  workspace_id: string;
  name: string;
  subject: string;
  preview_text: string | null;
  /** The editable blocks, as JSON. */
  blocks: string;
  definition_id: string | null;
  node_id: string | null;
  created_at: number;
  updated_at: number;
}

export interface DefinitionTable {
  id: string;
  workspace_id: string;
  kind: 'sequence' | 'flow';
  name: string;
  description: string | null;
  status: 'draft' | 'active' | 'paused' | 'archived';
  /** The editable draft: `{ graph, settings, trigger }` as JSON. */
  draft: string;
  draft_changed: number;
  current_version_id: string | null;
  published_at: number | null;
  created_at: number;
  updated_at: number;
  deleted_at: number | null;
  /** The published version's trigger type (api, contact_added, tag_added, …). */
  trigger_type: Generated<string>;
  /** What the trigger listens to: list id, tag name key, segment id or event name. */
  trigger_key: Generated<string | null>;
  /** The published stop condition's type and what it listens to. */
  stop_type: Generated<string | null>;
  stop_key: Generated<string | null>;
  enrollments_paused: Generated<number>;
  /** AI writing state for definitions created from a goal, as JSON. */
  enrichment: Generated<string | null>;
  enrichment_due_at: Generated<number | null>;
  /** A/B: the variant B sequence and the percentage of contacts sent to it. */
  ab_variant_id: Generated<string | null>;
  ab_split_percent: Generated<number | null>;
}

export interface DefinitionVersionTable {
  id: string;
  workspace_id: string;
  definition_id: string;
  version: number;
  /** The frozen, compiled graph with settings and trigger, as JSON. */
  body: string;
  created_at: number;
}

export interface SessionTable {
  id: string;
  workspace_id: string;
  definition_id: string;
  version_id: string;
  kind: 'sequence' | 'flow';
  contact_id: string;
  /** running | waiting | completed | stopped | expired | failed */
  status: string;
  /** 1 while running or waiting: the partial unique index keys on it. */
  active: number;
  enrollment_key: string;
  current_node: string | null;
  wake_at: number | null;
  expires_at: number | null;
  context: string;
  event: string | null;
  /** Interpreter state: visit counters, replies, webhook results, variables. */
  state: string;
  source: string;
  end_reason: string | null;
  steps_run: number;
  created_at: number;
  updated_at: number;
  ended_at: number | null;
  ab_variant: Generated<string | null>;
  ab_parent_id: Generated<string | null>;
}

export interface SessionStepTable {
  id: string;
  workspace_id: string;
  session_id: string;
  node_id: string;
  node_type: string;
  visit: number;
  outcome: string;
  detail: string | null;
  at: number;
}

export interface MessageTable {
  id: string;
  workspace_id: string;
  contact_id: string;
  session_id: string | null;
  definition_id: string | null;
  node_id: string | null;
  /** `session:node:visit` for engine messages, so a re-run step never creates a second one. */
  dedupe_key: string | null;
  direction: 'outbound' | 'inbound';
  channel: 'whatsapp' | 'sms' | 'email';
  provider: string;
  recipient: string | null;
  kind: string;
  content: string;
  marketing: number;
  status: string;
  provider_message_id: string | null;
  error_code: string | null;
  error_message: string | null;
  attempts: number;
  next_attempt_at: number | null;
  lease_until: number | null;
  on_failure: string;
  created_at: number;
  updated_at: number;
  sent_at: number | null;
  delivered_at: number | null;
  read_at: number | null;
  failed_at: number | null;
  segments: number | null;
  encoding: string | null;
  broadcast_id: Generated<string | null>;
  clicked_at: Generated<number | null>;
  replied_at: Generated<number | null>;
}

export interface EventTable {
  id: string;
  workspace_id: string;
  contact_id: string;
  name: string;
  properties: string;
  occurred_at: number;
  created_at: number;
}

export interface ContactEventStatTable {
  workspace_id: string;
  contact_id: string;
  name: string;
  first_at: number;
  last_at: number;
  total: number;
}

export interface ListTable {
  id: string;
  workspace_id: string;
  name: string;
  description: string | null;
  created_at: number;
  updated_at: number;
}

export interface ListMemberTable {
  list_id: string;
  contact_id: string;
  workspace_id: string;
  created_at: number;
}

export interface SegmentTable {
  id: string;
  workspace_id: string;
  name: string;
  description: string | null;
  filter: string;
  created_at: number;
  updated_at: number;
}

export interface SegmentMemberTable {
  segment_id: string;
  contact_id: string;
  workspace_id: string;
  entered_at: number;
}

export interface SegmentRecheckTable {
  segment_id: string;
  contact_id: string;
  workspace_id: string;
  due_at: number;
}

export interface TriggerFireTable {
  definition_id: string;
  contact_id: string;
  fire_key: string;
  workspace_id: string;
  fired_at: number;
}

export interface TriggerScanTable {
  definition_id: string;
  workspace_id: string;
  scanned_until: number;
  updated_at: number;
}

export interface DiscountCodeTable {
  id: string;
  workspace_id: string;
  code: string;
  /** The code upper-cased: codes are matched ignoring case. */
  code_key: string;
  provider: string;
  definition_id: string | null;
  session_id: string | null;
  contact_id: string | null;
  percent_off: number | null;
  amount_off: number | null;
  currency: string | null;
  max_redemptions: number | null;
  redemptions: Generated<number>;
  lock_contact_id: string | null;
  expires_at: number | null;
  provider_ref: string | null;
  created_at: number;
  last_redeemed_at: number | null;
  /** `session:node:visit` of the step run that made it; null for codes made otherwise. */
  step_key: string | null;
  node_id: string | null;
  /** JSON: duration, durationInMonths, planIds, label. */
  terms: string | null;
}

export interface DiscountRedemptionTable {
  id: string;
  workspace_id: string;
  discount_code_id: string;
  contact_id: string | null;
  email: string | null;
  redeemed_at: number;
}

export interface IntegrationTable {
  workspace_id: string;
  /** stripe | shopify */
  provider: string;
  config: string;
  secrets: string;
  /** unverified | ok | error */
  status: string;
  status_error: string | null;
  status_at: number | null;
  created_at: number;
  updated_at: number;
}

export interface ProviderSettingsTable {
  workspace_id: string;
  channel: 'whatsapp' | 'sms' | 'email';
  /** whatsapp-cloud | twilio | smtp */
  provider: string;
  config: string;
  secrets: string;
  /** unverified | ok | error */
  status: string;
  status_error: string | null;
  status_at: number | null;
  created_at: number;
  updated_at: number;
}

export interface WebhookEventTable {
  id: string;
  workspace_id: string | null;
  provider: string;
  outcome: string;
  reason: string | null;
  remote_address: string | null;
  body_sha256: string | null;
  created_at: number;
}

export interface RateBucketTable {
  key: string;
  window_start: number;
  count: number;
}

export interface PendingStatusTable {
  id: string;
  workspace_id: string;
  provider: string;
  provider_message_id: string;
  status: string;
  occurred_at: number;
  error_code: string | null;
  error_message: string | null;
  created_at: number;
}

export interface WebhookSubscriptionTable {
  id: string;
  workspace_id: string;
  url: string;
  description: string | null;
  events: string;
  secret: string;
  status: string;
  failing_since: number | null;
  disabled_at: number | null;
  disabled_reason: string | null;
  created_at: number;
  updated_at: number;
  /** The secret a rotation replaced (encrypted), still signing until it expires. */
  previous_secret: Generated<string | null>;
  previous_secret_expires_at: Generated<number | null>;
}

export interface WebhookDeliveryTable {
  id: string;
  workspace_id: string;
  subscription_id: string;
  event_id: string;
  event_type: string;
  payload: string;
  status: string;
  attempts: Generated<number>;
  next_attempt_at: number | null;
  lease_until: number | null;
  last_status_code: number | null;
  last_error: string | null;
  created_at: number;
  delivered_at: number | null;
}

export interface WebhookAttemptTable {
  id: string;
  workspace_id: string;
  delivery_id: string;
  subscription_id: string;
  status_code: number | null;
  error: string | null;
  duration_ms: number;
  at: number;
}

export interface BroadcastTable {
  id: string;
  workspace_id: string;
  name: string;
  template_id: string;
  language: string | null;
  variables: string;
  audience: string;
  status: string;
  scheduled_at: number | null;
  due_at: number | null;
  lease_until: number | null;
  cursor: string | null;
  /** Contacts the broadcast reached and queued a message for. */
  recipients: Generated<number>;
  /** Contacts of the audience it did not message: opted out of WhatsApp, or without a phone. */
  skipped: Generated<number>;
  error: string | null;
  started_at: number | null;
  completed_at: number | null;
  created_at: number;
  updated_at: number;
  deleted_at: number | null;
}

export interface LinkClickTable {
  id: string;
  workspace_id: string;
  message_id: string;
  url: string;
  clicked_at: number;
}

export interface UserSessionTable {
  id: string;
  token_hash: string;
  user_id: string;
  workspace_id: string;
  created_at: number;
  last_seen_at: number;
  expires_at: number;
  absolute_expires_at: number;
  ip: string | null;
  user_agent: string | null;
}

export interface LoginAttemptTable {
  key: string;
  window_start: number;
  attempts: number;
}

export interface Schema {
  workspaces: WorkspaceTable;
  users: UserTable;
  api_tokens: ApiTokenTable;
  contacts: ContactTable;
  tags: TagTable;
  contact_tags: ContactTagTable;
  idempotency_keys: IdempotencyKeyTable;
  rate_limits: RateLimitTable;
  templates: TemplateTable;
  email_templates: EmailTemplateTable;
  definitions: DefinitionTable;
  definition_versions: DefinitionVersionTable;
  sessions: SessionTable;
  session_steps: SessionStepTable;
  messages: MessageTable;
  provider_settings: ProviderSettingsTable;
  webhook_events: WebhookEventTable;
  rate_buckets: RateBucketTable;
  pending_statuses: PendingStatusTable;
  events: EventTable;
  contact_event_stats: ContactEventStatTable;
  lists: ListTable;
  list_members: ListMemberTable;
  segments: SegmentTable;
  segment_members: SegmentMemberTable;
  segment_rechecks: SegmentRecheckTable;
  trigger_fires: TriggerFireTable;
  trigger_scans: TriggerScanTable;
  discount_codes: DiscountCodeTable;
  discount_redemptions: DiscountRedemptionTable;
  integrations: IntegrationTable;
  webhook_subscriptions: WebhookSubscriptionTable;
  webhook_deliveries: WebhookDeliveryTable;
  webhook_attempts: WebhookAttemptTable;
  broadcasts: BroadcastTable;
  link_clicks: LinkClickTable;
  user_sessions: UserSessionTable;
  login_attempts: LoginAttemptTable;
}

export type ContactRow = Selectable<ContactTable>;
export type NewContactRow = Insertable<ContactTable>;
export type ContactPatch = Updateable<ContactTable>;
export type DefinitionRow = Selectable<DefinitionTable>;
export type SessionRow = Selectable<SessionTable>;
export type MessageRow = Selectable<MessageTable>;
export type ApiTokenRow = Selectable<ApiTokenTable>;
export type WorkspaceRow = Selectable<WorkspaceTable>;
export type Generated<T> = ColumnType<T, T | undefined, T>;
